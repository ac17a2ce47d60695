"""Serves a scikit-learn estimator saved with skops. Input: a list of feature rows, one row,
or {"instances": [...]} (rows may be objects when the estimator knows its feature names).
Output: {"predictions": [...], "probabilities": [...]?, "classes": [...]?}."""

import os

import skops.io


def load():
    path = os.environ["MARKETPLACE_MODEL_FILE"]
    # Only types skops itself reports as found in this file are trusted: loading never
    # runs arbitrary code, and a file needing anything exotic is refused at build time.
    untrusted = skops.io.get_untrusted_types(file=path)
    return skops.io.load(path, trusted=untrusted)


def apply(data, model):
    rows = data.get("instances") if isinstance(data, dict) and "instances" in data else data
    if isinstance(rows, dict) or (
        isinstance(rows, list) and rows and not isinstance(rows[0], list | dict)
    ):
        rows = [rows]
    if not isinstance(rows, list) or not rows:
        raise ValueError("send a list of feature rows, e.g. [[1.0, 2.0, 3.0]]")
    if isinstance(rows[0], dict):
        import pandas as pd

        rows = pd.DataFrame(rows)
    result = {"predictions": model.predict(rows).tolist()}
    if hasattr(model, "predict_proba"):
        result["probabilities"] = model.predict_proba(rows).tolist()
        result["classes"] = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    return result
