"""Iris species classifier, version 2.

Logistic regression trained on scikit-learn's bundled iris data in load() (milliseconds, fully
deterministic). Compared with version 1 it also accepts flowers as plain 4-number arrays and an
{"instances": [...]} envelope, and every prediction says which model version produced it.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL_VERSION = "2.0.0"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
MAX_ROWS = 1000
USAGE = (
    'expected {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}, '
    'an array [5.1, 3.5, 1.4, 0.2], a list of either, or {"instances": [...]}'
)


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


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"{where} must be a number (centimetres), got {value!r}")
    if value <= 0:
        raise ValueError(f"{where} must be positive, got {value!r}")
    return float(value)


def _row(flower, where: str) -> list[float]:
    if isinstance(flower, list):
        if len(flower) != 4:
            raise ValueError(f"{where} must have exactly 4 numbers ({', '.join(FEATURES)})")
        return [_number(v, f"{where}[{i}]") for i, v in enumerate(flower)]
    if not isinstance(flower, dict):
        raise ValueError(f"{where}: {USAGE}")
    missing = [name for name in FEATURES if name not in flower]
    if missing:
        raise ValueError(f"{where} is missing {', '.join(missing)}")
    unknown = sorted(set(flower) - set(FEATURES))
    if unknown:
        raise ValueError(
            f"{where} has unknown keys {', '.join(unknown)}; expected {', '.join(FEATURES)}"
        )
    return [_number(flower[name], f"{where}.{name}") for name in FEATURES]


def _rows(input) -> tuple[list[list[float]], bool]:
    """Return the feature rows and whether the caller sent a single flower."""
    if isinstance(input, dict) and "instances" in input:
        if set(input) != {"instances"}:
            raise ValueError('{"instances": [...]} takes no other keys')
        input = input["instances"]
        if not isinstance(input, list):
            raise ValueError('"instances" must be a list of flowers')
    elif isinstance(input, dict):
        return [_row(input, "input")], True
    if not isinstance(input, list):
        raise ValueError(USAGE)
    if not input:
        raise ValueError("the list of flowers is empty")
    # a bare [5.1, 3.5, 1.4, 0.2] is one flower, not four
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in input):
        return [_row(input, "input")], True
    if len(input) > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS} flowers per call (got {len(input)})")
    return [_row(flower, f"input[{i}]") for i, flower in enumerate(input)], False


def apply(input, state: dict):
    rows, single = _rows(input)
    probabilities = state["model"].predict_proba(np.array(rows))
    classes = state["classes"]
    results = []
    for p in probabilities:
        best = int(np.argmax(p))
        results.append(
            {
                "class": classes[best],
                "confidence": round(float(p[best]), 4),
                "probabilities": {
                    name: round(float(v), 4) for name, v in zip(classes, p, strict=True)
                },
                "model_version": MODEL_VERSION,
            }
        )
    return results[0] if single else results
