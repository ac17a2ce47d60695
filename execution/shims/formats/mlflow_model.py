"""Serves an MLflow model folder through its pyfunc flavour. Input: {"dataframe_records":
[...]}, {"dataframe_split": {"columns", "data"}}, {"inputs": ...} (MLflow's own serving
formats), or a bare list of records. Output: {"predictions": [...]}."""

import os

import mlflow.pyfunc


def load():
    return mlflow.pyfunc.load_model(os.environ["MARKETPLACE_MODEL_FILE"])


def apply(data, model):
    import pandas as pd  # noqa: PLC0415 (in the model's environment only when it asks for it)

    schema = model.metadata.get_input_schema()
    if isinstance(data, dict) and ("dataframe_records" in data or "dataframe_split" in data):
        # MLflow's own parser applies the model's input schema (an integer sent for a double
        # column is converted, as MLflow's scoring server does).
        from mlflow.utils.proto_json_utils import dataframe_from_parsed_json  # noqa: PLC0415 (in the model's environment only when it asks for it)

        orient = "records" if "dataframe_records" in data else "split"
        frame = dataframe_from_parsed_json(data[f"dataframe_{orient}"], orient, schema=schema)
    elif isinstance(data, dict) and "inputs" in data:
        frame = data["inputs"]
    elif isinstance(data, list):
        frame = pd.DataFrame.from_records(data) if data and isinstance(data[0], dict) else data
    else:
        raise ValueError(
            'send {"dataframe_records": [...]}, {"dataframe_split": {...}}, '
            '{"inputs": ...} or a list of records'
        )
    predictions = model.predict(frame)
    if hasattr(predictions, "to_dict"):
        predictions = (
            predictions.to_dict(orient="records")
            if hasattr(predictions, "columns")
            else predictions.tolist()
        )
    elif hasattr(predictions, "tolist"):
        predictions = predictions.tolist()
    return {"predictions": predictions}
