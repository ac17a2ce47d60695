"""Build the `diabetes-mlflow` demo model: a ridge regression trained on the diabetes data bundled
with scikit-learn, saved as an MLflow model (sklearn + python_function flavours, skops
serialisation) in OUT_DIR/model/.

    python catalog/demo/generators/diabetes_mlflow.py OUT_DIR    (or OUT_DIR=... in the environment)

Requirements: requirements-diabetes_mlflow.txt (mlflow-skinny is enough to save and to load).
The model's own requirements.txt names mlflow-skinny, not the full mlflow distribution, so
serving it stays light. Before finishing, the saved folder is loaded back with
mlflow.pyfunc.load_model and must reproduce the scikit-learn model's predictions.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import tempfile
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MODEL_FOLDER = "model"
# scikit-learn's columns s1..s6, by the names of the original study (Efron et al., 2004)
COLUMNS = {"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"}
NUMERIC = ["age", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu"]
# what serving the saved model needs (written to the model's requirements.txt)
SERVING_PACKAGES = ("mlflow-skinny", "scikit-learn", "skops", "pandas", "numpy")


def training_data() -> tuple[pd.DataFrame, pd.Series]:
    data = load_diabetes(scaled=False, as_frame=True)
    x = data.data.rename(columns=COLUMNS).astype("float64")
    return x[["age", "sex", *NUMERIC[1:]]], data.target


def build() -> tuple[Pipeline, pd.DataFrame, float]:
    x, y = training_data()
    features = ColumnTransformer(
        [
            ("sex", OneHotEncoder(drop="if_binary", handle_unknown="error"), ["sex"]),
            ("numeric", StandardScaler(), NUMERIC),
        ]
    )
    model = Pipeline([("features", features), ("ridge", RidgeCV(alphas=np.logspace(-3, 3, 25)))])
    folds = KFold(n_splits=5, shuffle=True, random_state=0)
    r2 = float(cross_val_score(model, x, y, cv=folds, scoring="r2").mean())
    model.fit(x, y)
    return model, x, r2


def save(model, x: pd.DataFrame, destination: Path) -> None:
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in SERVING_PACKAGES]
    with tempfile.TemporaryDirectory() as scratch:  # save_model wants a path that does not exist
        staged = Path(scratch) / MODEL_FOLDER
        mlflow.sklearn.save_model(
            model,
            str(staged),
            serialization_format="skops",  # safe to load: no pickle
            # No signature: MLflow enforces "double" columns strictly and refuses JSON integers
            # (int64 -> float64 is not a "safe" cast) unless the server parses the request
            # with the schema first. Without one, scikit-learn converts the numbers itself and
            # names any missing column. input_example.json still documents the columns.
            signature=False,
            input_example=x.head(2),
            pip_requirements=pins,
            metadata={
                "source": "marketplace demo catalogue",
                "dataset": "diabetes, Efron et al. 2004",
            },
        )
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(staged, destination)


def check(destination: Path, model, x: pd.DataFrame) -> None:
    loaded = mlflow.pyfunc.load_model(str(destination))
    predictions = np.asarray(loaded.predict(x.head(20)))
    if not np.allclose(predictions, model.predict(x.head(20))):
        raise SystemExit("the reloaded MLflow model predicts differently from scikit-learn")


def main(argv: list[str]) -> int:
    out = argv[1] if len(argv) > 1 else os.environ.get("OUT_DIR")
    if not out:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, x, r2 = build()
    destination = out_dir / MODEL_FOLDER
    save(model, x, destination)
    check(destination, model, x)
    print(
        f"wrote the MLflow model {destination} (5-fold R² {r2:.3f}); "
        "pyfunc reload predicts the same"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
