from django.apps import AppConfig

from marketplace.core import health, metrics

from .health import check_execution, check_sandbox
from .metrics import RunnerPoolCollector
from .runtimes import adk, command, formats, node, python, runtimes


class ExecutionConfig(AppConfig):
    name = "execution"
    label = "execution"
    verbose_name = "Execution"

    def ready(self):
        health.checks.add("sandbox", check_sandbox)
        health.checks.add("execution", check_execution)
        metrics.collectors.add("runner_pool", RunnerPoolCollector())
        for runtime in (
            python.PythonRuntime(),
            adk.AdkRuntime(),
            command.CommandRuntime(),
            node.NodeRuntime(),
            formats.OnnxRuntime(),
            formats.SkopsRuntime(),
            formats.MlflowRuntime(),
        ):
            runtimes.add(runtime.name, runtime)
