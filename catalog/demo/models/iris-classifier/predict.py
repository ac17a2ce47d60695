"""Iris species classifier: logistic regression trained on scikit-learn's bundled iris data.

Training takes a few milliseconds, so the model is fitted in load() (once per warm process)
instead of being shipped as a pickle: the package stays plain, reviewable code.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
MAX_ROWS = 1000


def load() -> dict:
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.2, stratify=iris.target, random_state=42
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))
    model.fit(x_train, y_train)
    held_out_accuracy = float(model.score(x_test, y_test))
    model.fit(iris.data, iris.target)  # the served model uses all 150 flowers
    classes = [str(name) for name in iris.target_names]
    return {"model": model, "classes": classes, "held_out_accuracy": held_out_accuracy}


def _row(flower, where: str) -> list[float]:
    if not isinstance(flower, dict):
        raise ValueError(f"{where} must be an object with keys {', '.join(FEATURES)}")
    missing = [name for name in FEATURES if name not in flower]
    if missing:
        raise ValueError(f"{where} is missing {', '.join(missing)}")
    unknown = sorted(set(flower) - set(FEATURES))
    if unknown:
        raise ValueError(
            f"{where} has unknown keys {', '.join(unknown)}; expected {', '.join(FEATURES)}"
        )
    row = []
    for name in FEATURES:
        value = flower[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValueError(f"{where}.{name} must be a number (centimetres), got {value!r}")
        if value <= 0:
            raise ValueError(f"{where}.{name} must be positive, got {value!r}")
        row.append(float(value))
    return row


def apply(input, state: dict):
    single = isinstance(input, dict)
    if single:
        rows = [_row(input, "input")]
    elif isinstance(input, list):
        if not input:
            raise ValueError("the list of flowers is empty")
        if len(input) > MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS} flowers per call (got {len(input)})")
        rows = [_row(flower, f"input[{i}]") for i, flower in enumerate(input)]
    else:
        raise ValueError(
            'expected {"sepal_length": 5.1, "sepal_width": 3.5, '
            '"petal_length": 1.4, "petal_width": 0.2} '
            "or a list of such objects"
        )

    probabilities = state["model"].predict_proba(np.array(rows))
    classes = state["classes"]
    results = [
        {
            "class": classes[int(np.argmax(p))],
            "probabilities": {name: round(float(v), 4) for name, v in zip(classes, p, strict=True)},
        }
        for p in probabilities
    ]
    return results[0] if single else results
