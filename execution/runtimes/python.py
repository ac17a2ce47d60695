from . import ModelSpec, PythonBased


class PythonRuntime(PythonBased):
    """`entrypoint = "predict.py:apply"`, optional `load = "predict.py:load"`."""

    name = "python"

    def arguments(self, spec: ModelSpec) -> list[str]:
        return ["-u", "{shims}/python_shim.py", str(spec.entrypoint), spec.load or ""]
