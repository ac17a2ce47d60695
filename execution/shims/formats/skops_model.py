"""Serves a scikit-learn estimator saved with skops. Input: a list of feature rows, one row,
or {"instances": [...]} (rows may be objects when the estimator knows its feature names).
Output: {"predictions": [...], "probabilities": [...]?, "classes": [...]?}."""

import os

import skops.io


def load():
    path = os.environ["MARKETPLACE_MODEL_FILE"]
    # skops trusts scikit-learn's, numpy's and scipy's own types by default; a file that
    # needs any other type could run code of its author's choosing when loaded, so it is
    # refused (at build time, when the model is first started) instead of trusted.
    untrusted = skops.io.get_untrusted_types(file=path)
    if untrusted:
        raise ValueError(
            "this .skops file needs types skops does not trust by default: "
            + ", ".join(sorted(untrusted))
            + "; save the model with only scikit-learn, numpy and scipy types"
        )
    return skops.io.load(path)


def apply(data, model):
    rows = data.get("instances") if isinstance(data, dict) and "instances" in data else data
    if isinstance(rows, dict) or (
        isinstance(rows, list) and rows and not isinstance(rows[0], list | dict)
    ):
        rows = [rows]
    if not isinstance(rows, list) or not rows:
        raise ValueError("send a list of feature rows, e.g. [[1.0, 2.0, 3.0]]")
    if isinstance(rows[0], dict):
        import pandas as pd  # noqa: PLC0415 (in the model's environment only when it asks for it)

        rows = pd.DataFrame(rows)
        expected = list(getattr(model, "feature_names_in_", []))
        if expected:
            missing = [name for name in expected if name not in rows.columns]
            if missing:
                raise ValueError(f"missing features: {', '.join(missing)}")
            rows = rows[expected]  # the order the estimator was fitted with
    result = {"predictions": model.predict(rows).tolist()}
    if hasattr(model, "predict_proba"):
        result["probabilities"] = model.predict_proba(rows).tolist()
        result["classes"] = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    return result
