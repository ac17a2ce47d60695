from . import ModelSpec, PythonBased


class AdkRuntime(PythonBased):
    """An Algorithmia ADK algorithm, unchanged: its script is run as is; the ADK prints
    PIPE_INIT_COMPLETE when loaded and writes each answer to the FIFO /tmp/algoout, which
    exists only in this process's private /tmp."""

    name = "adk"

    def arguments(self, spec: ModelSpec) -> list[str]:
        script = str(spec.entrypoint).rpartition(":")[0] or str(spec.entrypoint)
        return ["-u", f"{{package}}/{script}"]

    def extra_env(self, spec: ModelSpec) -> dict[str, str]:
        return {"PYTHONPATH": "{shims}/adk_compat:{package}:{package}/src"}

    def protocol(self) -> dict:
        return {
            "result_channel": "fifo",
            "ready": "marker",
            "ready_marker": "PIPE_INIT_COMPLETE",
            # adk_compat/sitecustomize.py serves the API relay in a thread of the algorithm.
            "hosts_api_relay": True,
        }
