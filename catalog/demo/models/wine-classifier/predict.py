"""Wine cultivar classifier with per-prediction explanations.

Standardised features + multinomial logistic regression, trained in load() on scikit-learn's
bundled copy of the UCI wine recognition data (178 wines, 3 cultivars, 13 measurements).
Because the model is linear, each feature's contribution to the predicted class's score is
simply coefficient x standardised value; the largest ones are returned as `top_features`.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = (
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280_od315",
    "proline",
)
ALIASES = {"od280/od315_of_diluted_wines": "od280_od315"}  # scikit-learn's own column name
CLASSES = ("cultivar_1", "cultivar_2", "cultivar_3")
MAX_ROWS = 1000
TOP_FEATURES = 3


def load() -> dict:
    wine = load_wine()
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, random_state=0)
    )
    cv_accuracy = float(cross_val_score(model, wine.data, wine.target, cv=5).mean())
    model.fit(wine.data, wine.target)
    return {"model": model, "cv_accuracy": cv_accuracy}


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"{where} must not be negative, got {value!r}")
    return float(value)


def _row(wine, where: str) -> list[float]:
    if isinstance(wine, list):
        if len(wine) != len(FEATURES):
            raise ValueError(
                f"{where} must hold {len(FEATURES)} numbers in this order: {', '.join(FEATURES)}"
            )
        return [_number(v, f"{where}[{i}]") for i, v in enumerate(wine)]
    if not isinstance(wine, dict):
        raise ValueError(
            f"{where} must be an object with keys {', '.join(FEATURES)} or a list of 13 numbers"
        )
    wine = {ALIASES.get(key, key): value for key, value in wine.items()}
    missing = [name for name in FEATURES if name not in wine]
    if missing:
        raise ValueError(f"{where} is missing {', '.join(missing)}")
    unknown = sorted(set(wine) - set(FEATURES))
    if unknown:
        raise ValueError(f"{where} has unknown keys: {', '.join(unknown)}")
    return [_number(wine[name], f"{where}.{name}") for name in FEATURES]


def apply(input, state: dict):
    if isinstance(input, dict) or (
        isinstance(input, list) and input and all(not isinstance(v, (dict, list)) for v in input)
    ):
        rows, single = [_row(input, "input")], True
    elif isinstance(input, list) and input:
        if len(input) > MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS} wines per call (got {len(input)})")
        rows, single = [_row(wine, f"input[{i}]") for i, wine in enumerate(input)], False
    else:
        raise ValueError(
            "expected one wine (an object of 13 measurements or a 13-number array) "
            "or a list of wines"
        )

    model = state["model"]
    x = np.array(rows)
    probabilities = model.predict_proba(x)
    scaler, classifier = (
        model.named_steps["standardscaler"],
        model.named_steps["logisticregression"],
    )
    standardised = scaler.transform(x)
    results = []
    for p, z in zip(probabilities, standardised, strict=True):
        best = int(np.argmax(p))
        contributions = classifier.coef_[best] * z
        order = np.argsort(-contributions)[:TOP_FEATURES]
        results.append(
            {
                "cultivar": CLASSES[best],
                "probabilities": {
                    name: round(float(v), 4) for name, v in zip(CLASSES, p, strict=True)
                },
                "top_features": [
                    {"feature": FEATURES[i], "contribution": round(float(contributions[i]), 3)}
                    for i in order
                ],
            }
        )
    return results[0] if single else results
