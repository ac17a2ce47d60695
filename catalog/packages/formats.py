"""Standard model formats, published with no code and no model.toml.

An MLflow model folder (`MLmodel` with the `python_function` flavour), an ONNX file or a
scikit-learn model saved with skops is a complete package on its own: the platform knows how
to serve it. `detect_format` recognises one in an unpacked package; `format_problem` explains
why a package that looks like one is not (for the error message when nothing is detected).
"""

from __future__ import annotations

from pathlib import Path

import yaml

MLMODEL = "MLmodel"
# Single-file formats: the suffix of the file at the package root.
FILE_FORMATS = {"onnx": ".onnx", "skops": ".skops"}
# What `framework` defaults to for a package in each format.
FORMAT_FRAMEWORKS = {"mlflow": "mlflow", "onnx": "onnx", "skops": "scikit-learn"}

_MAX_MLMODEL_BYTES = 1024 * 1024


def detect_format(root: Path) -> tuple[str, str] | None:
    """The standard format of the package at `root` and the relative path of its model:
    ("mlflow", folder) for an MLflow pyfunc model whose `MLmodel` is at the root (".") or in a
    single subfolder; ("onnx", file) / ("skops", file) for exactly one such file at the root.
    MLflow wins over a model file (an MLflow ONNX model has a model.onnx next to its MLmodel).
    None when there is no such model, or when it is ambiguous."""
    root = Path(root)
    folders = _mlflow_folders(root)
    if len(folders) == 1 and mlflow_model_problem(root / folders[0]) is None:
        return "mlflow", folders[0]
    if folders:
        return None
    files = _model_files(root)
    if len(files) == 1:
        return files[0]
    return None


def format_problem(root: Path) -> str | None:
    """Why `root` looks like a standard-format package but is not one; None when it does not
    look like one at all (or is one)."""
    root = Path(root)
    folders = _mlflow_folders(root)
    if len(folders) > 1:
        listed = ", ".join(f'"{folder}"' for folder in folders)
        return f"found several MLflow models ({listed}); publish one at a time"
    if folders:
        problem = mlflow_model_problem(root / folders[0])
        if problem:
            where = "" if folders[0] == "." else f"{folders[0]}/"
            return f"{where}{problem}"
        return None
    files = _model_files(root)
    if len(files) > 1:
        listed = ", ".join(f'"{path}"' for _, path in files)
        return (
            f"found several model files ({listed}); publish one at a time, or add a "
            'model.toml whose entrypoint names the model file (runtime = "onnx" or "skops")'
        )
    return None


def mlflow_model_problem(folder: Path) -> str | None:
    """None when `folder` holds an MLflow model the platform can serve (the python_function
    flavour), else what is wrong with it."""
    mlmodel = Path(folder) / MLMODEL
    if not mlmodel.is_file():
        return f"{MLMODEL} is missing"
    if mlmodel.stat().st_size > _MAX_MLMODEL_BYTES:
        return f"{MLMODEL} is larger than 1 MiB"
    try:
        data = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{MLMODEL} is not valid YAML ({detail})"
    flavors = data.get("flavors") if isinstance(data, dict) else None
    if not isinstance(flavors, dict):
        return f"{MLMODEL} has no flavors: section"
    if "python_function" not in flavors:
        present = ", ".join(str(name) for name in flavors) or "none"
        return (
            f"{MLMODEL} has no python_function flavor (it has: {present}); save the model "
            "with a flavor that includes python_function, e.g. mlflow.sklearn or mlflow.pyfunc"
        )
    return None


def _mlflow_folders(root: Path) -> list[str]:
    if (root / MLMODEL).is_file():
        return ["."]
    return sorted(
        child.name
        for child in root.iterdir()
        if child.is_dir() and not child.name.startswith(".") and (child / MLMODEL).is_file()
    )


def _model_files(root: Path) -> list[tuple[str, str]]:
    found = []
    for child in sorted(root.iterdir()):
        if not child.is_file():
            continue
        for fmt, suffix in FILE_FORMATS.items():
            if child.name.lower().endswith(suffix):
                found.append((fmt, child.name))
    return found
