"""Diabetes disease progression: a ridge regression with a 90% prediction interval.

Trained in load() on the diabetes data of Efron, Hastie, Johnstone & Tibshirani (2004), as
bundled with scikit-learn in its original units (`load_diabetes(scaled=False)`).

The interval is a split-conformal style interval built from out-of-fold residuals: 5-fold
cross-validation predicts every patient with a model that did not see them, and the
ceil((n+1) * 0.9)-th smallest absolute error becomes the half-width. Under exchangeability this
covers the true value for about 90% of new patients from the same population.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# canonical names (Efron et al.) -> scikit-learn's column names are the same order: age, sex,
# bmi, bp, s1..s6
FEATURES = ("age", "sex", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu")
ALIASES = {"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"}
RANGES = {  # generous plausibility bounds; the training data lies well inside them
    "age": (0, 120),
    "sex": (1, 2),
    "bmi": (10, 80),
    "bp": (30, 250),
    "tc": (50, 500),
    "ldl": (10, 400),
    "hdl": (5, 200),
    "tch": (0.5, 20),
    "ltg": (1, 10),
    "glu": (30, 400),
}
LEVEL = 0.9
MAX_ROWS = 1000


def load() -> dict:
    data = load_diabetes(scaled=False)
    x, y = data.data, data.target
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 25)))
    folds = KFold(n_splits=5, shuffle=True, random_state=0)
    out_of_fold = cross_val_predict(model, x, y, cv=folds)
    residuals = np.sort(np.abs(y - out_of_fold))
    rank = min(math.ceil((len(y) + 1) * LEVEL), len(y))
    half_width = float(residuals[rank - 1])
    r2 = 1.0 - float(((y - out_of_fold) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    model.fit(x, y)
    y_range = (float(y.min()), float(y.max()))
    return {"model": model, "half_width": half_width, "cv_r2": r2, "y_range": y_range}


def _row(patient, where: str) -> list[float]:
    if not isinstance(patient, dict):
        raise ValueError(f"{where} must be an object with keys {', '.join(FEATURES)}")
    patient = {ALIASES.get(key, key): value for key, value in patient.items()}
    missing = [name for name in FEATURES if name not in patient]
    if missing:
        raise ValueError(f"{where} is missing {', '.join(missing)}")
    unknown = sorted(set(patient) - set(FEATURES))
    if unknown:
        raise ValueError(f"{where} has unknown keys: {', '.join(unknown)}")
    row = []
    for name in FEATURES:
        value = patient[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ValueError(f"{where}.{name} must be a number, got {value!r}")
        low, high = RANGES[name]
        if name == "sex" and value not in (1, 2):
            raise ValueError(
                f"{where}.sex must be 1 or 2 (the coding of the original study), got {value!r}"
            )
        if not low <= value <= high:
            raise ValueError(
                f"{where}.{name} = {value} is outside the plausible range {low}..{high}"
            )
        row.append(float(value))
    return row


def apply(input, state: dict):
    if isinstance(input, dict):
        rows, single = [_row(input, "input")], True
    elif isinstance(input, list) and input:
        if len(input) > MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS} patients per call (got {len(input)})")
        rows, single = [_row(p, f"input[{i}]") for i, p in enumerate(input)], False
    else:
        raise ValueError("expected one patient object or a non-empty list of patient objects")

    predictions = state["model"].predict(np.array(rows))
    half = state["half_width"]
    low, high = state["y_range"]  # the score's range in the data; the interval never leaves it
    results = [
        {
            "prediction": round(float(p), 1),
            "interval": {
                "lower": round(max(low, float(p) - half), 1),
                "upper": round(min(high, float(p) + half), 1),
                "level": LEVEL,
            },
        }
        for p in predictions
    ]
    return results[0] if single else results
