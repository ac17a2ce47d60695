"""Build the `iris-onnx` demo model: a scikit-learn classifier trained on the bundled iris data,
converted to ONNX, written to OUT_DIR/iris.onnx.

    python catalog/demo/generators/iris_onnx.py OUT_DIR      (or OUT_DIR=... in the environment)

Requirements: requirements-iris_onnx.txt. Deterministic: the same library versions give the
same file. Before finishing, the file is loaded with onnxruntime and must reproduce the
scikit-learn model's labels and probabilities.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FILE_NAME = "iris.onnx"
OPSET = 17


def build():
    iris = load_iris()
    labels = np.array(iris.target_names)[iris.target]  # string labels: the ONNX model outputs names
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))
    model.fit(iris.data.astype(np.float32), labels)
    onnx_model = to_onnx(
        model,
        initial_types=[("float_input", FloatTensorType([None, 4]))],
        options={id(model.steps[-1][1]): {"zipmap": False}},  # probabilities as a plain matrix
        target_opset={"": OPSET, "ai.onnx.ml": 3},
    )
    onnx_model.doc_string = (
        "Iris species classifier (StandardScaler + LogisticRegression) trained on the iris data "
        "bundled with scikit-learn. Input float_input: N x 4 floats (sepal length, sepal width, "
        "petal length, petal width, in cm). Outputs: label (N species names) and probabilities "
        "(N x 3: setosa, versicolor, virginica)."
    )
    onnx_model.producer_name = "marketplace-demo/iris_onnx.py"
    return model, onnx_model, iris.data.astype(np.float32)


def check(path: Path, model, x: np.ndarray) -> None:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {"float_input": x})
    if list(labels) != list(model.predict(x)):
        raise SystemExit("ONNX labels differ from scikit-learn's")
    if not np.allclose(probabilities, model.predict_proba(x), atol=1e-4):
        raise SystemExit("ONNX probabilities differ from scikit-learn's")


def main(argv: list[str]) -> int:
    out = argv[1] if len(argv) > 1 else os.environ.get("OUT_DIR")
    if not out:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, onnx_model, x = build()
    path = out_dir / FILE_NAME
    path.write_bytes(onnx_model.SerializeToString())
    check(path, model, x)
    print(
        f"wrote {path} ({path.stat().st_size} bytes); "
        "onnxruntime reproduces scikit-learn on all 150 flowers"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
