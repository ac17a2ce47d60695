"""Standard formats served with no code from the publisher: the platform's own loaders
(shims/formats/) run in an environment with the format's library."""

from . import ModelSpec, PythonBased


class FormatRuntime(PythonBased):
    loader = ""

    def arguments(self, spec: ModelSpec) -> list[str]:
        loader = f"{{shims}}/formats/{self.loader}"
        return ["-u", "{shims}/python_shim.py", f"{loader}:apply", f"{loader}:load"]

    def extra_env(self, spec: ModelSpec) -> dict[str, str]:
        return {"MARKETPLACE_MODEL_FILE": f"{{package}}/{spec.entrypoint}"}


class OnnxRuntime(FormatRuntime):
    name = "onnx"
    loader = "onnx_model.py"
    base_requirements = ("onnxruntime>=1.17", "numpy>=1.26")


class SkopsRuntime(FormatRuntime):
    name = "skops"
    loader = "skops_model.py"
    base_requirements = ("skops>=0.10", "scikit-learn>=1.4", "pandas>=2.0")


class MlflowRuntime(FormatRuntime):
    """The model folder's own requirements.txt (MLflow writes one) pins its libraries."""

    name = "mlflow"
    loader = "mlflow_model.py"
    base_requirements = ("mlflow-skinny>=2.10", "pandas>=2.0")
