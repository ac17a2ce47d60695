from celery import signals
from django.apps import AppConfig

from marketplace.core import health, metrics

from .backends import backends
from .backends.http import HttpBackend
from .backends.local import LocalBackend
from .health import check_sandbox
from .metrics import RunnerPoolCollector
from .runtimes import adk, command, formats, node, python, runtimes
from .sandbox import warn_worker_if_unsandboxed


class ExecutionConfig(AppConfig):
    name = "execution"
    label = "execution"
    verbose_name = "Execution"

    def ready(self):
        backends.add("local", LocalBackend())
        backends.add("http", HttpBackend())
        signals.worker_ready.connect(warn_worker_if_unsandboxed, dispatch_uid="execution.sandbox")
        health.checks.add("sandbox", check_sandbox)
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
