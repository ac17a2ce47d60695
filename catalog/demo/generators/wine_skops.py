"""Build the `wine-skops` demo model: a scikit-learn pipeline trained on the wine data bundled
with scikit-learn, saved with skops (a safe, pickle-free format) to OUT_DIR/wine.skops.

    python catalog/demo/generators/wine_skops.py OUT_DIR      (or OUT_DIR=... in the environment)

Requirements: requirements-wine_skops.txt. The pipeline is fitted on a pandas DataFrame, so it
knows its feature names and accepts rows as JSON objects. Before finishing, the file is loaded
back with skops.io.load — which must need no extra trusted types — and must predict like the
fitted pipeline. The model is deterministic, but the file is not byte-for-byte reproducible:
skops names the arrays inside it after Python object ids.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import skops.io
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FILE_NAME = "wine.skops"
CLASSES = np.array(["cultivar_1", "cultivar_2", "cultivar_3"])


def build():
    wine = load_wine(as_frame=True)
    x = wine.data.rename(columns={"od280/od315_of_diluted_wines": "od280_od315"})
    y = CLASSES[wine.target.to_numpy()]
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=0.5, max_iter=2000, random_state=0)),
        ]
    )
    accuracy = float(cross_val_score(model, x, y, cv=5).mean())
    model.fit(x, y)
    return model, x, accuracy


def check(path: Path, model, x) -> None:
    untrusted = skops.io.get_untrusted_types(file=path)
    if untrusted:
        raise SystemExit(f"the file needs types skops does not trust by default: {untrusted}")
    loaded = skops.io.load(path)
    if list(loaded.predict(x)) != list(model.predict(x)):
        raise SystemExit("the reloaded model predicts differently")
    if not np.allclose(loaded.predict_proba(x), model.predict_proba(x)):
        raise SystemExit("the reloaded model's probabilities differ")


def main(argv: list[str]) -> int:
    out = argv[1] if len(argv) > 1 else os.environ.get("OUT_DIR")
    if not out:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, x, accuracy = build()
    path = out_dir / FILE_NAME
    skops.io.dump(model, path)
    check(path, model, x)
    print(
        f"wrote {path} ({path.stat().st_size} bytes; 5-fold accuracy {accuracy:.3f}); "
        "skops reload predicts the same"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
