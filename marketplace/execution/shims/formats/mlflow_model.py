"""Serves an MLflow model folder through its pyfunc flavour. Input: {"dataframe_records":
[...]}, {"dataframe_split": {"columns", "data"}}, {"inputs": ...} (MLflow's own serving
formats), or a bare list of records. Output: {"predictions": [...]}."""

import os

import mlflow.pyfunc


def load():
    return mlflow.pyfunc.load_model(os.environ["MARKETPLACE_MODEL_FILE"])


def apply(data, model):
    import pandas as pd

    if isinstance(data, dict) and "dataframe_records" in data:
        frame = pd.DataFrame.from_records(data["dataframe_records"])
    elif isinstance(data, dict) and "dataframe_split" in data:
        split = data["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split.get("columns"))
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
