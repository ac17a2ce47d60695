"""Execution backends: where a call runs. One interface, a registry chosen by settings
(EXECUTION_BACKEND) and, per model, an `http` backend for models that live on an existing
inference server.

- local:  this host's runner service (warm sandboxed processes).
- celery: a Celery queue per hardware class; a worker on any host runs the call with its
          own runner service and stores the outcome on the invocation.
- http:   forwards to the model's inference server (Open Inference Protocol v2 or JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marketplace.core.health import ComponentHealth


@dataclass
class ExecutionRequest:
    request_id: str
    build_id: str
    content_type: str  # json | text | binary
    data: Any  # as the runner protocol carries it (binary: base64 text)
    timeout: float
    hardware_class: str = "cpu"


@dataclass
class ExecutionResult:
    status: str  # succeeded | failed | timeout
    result: Any = None
    content_type: str = "json"
    error: dict | None = None
    stdout: str = ""
    duration: float = 0.0
    cold_start: bool = False
    extra: dict = field(default_factory=dict)


class ExecutionUnavailable(Exception):
    """The backend cannot take calls now (runner down, no worker): a 503, not the model's
    fault."""


class ExecutionBackend:
    name = ""

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        raise NotImplementedError

    def submit(self, request_id: str, hardware_class: str) -> None:
        """Run an invocation asynchronously: a worker takes it from the queue of
        asynchronous calls and runs it on this backend."""
        from django.conf import settings

        from gateway.tasks import execute_invocation

        execute_invocation.apply_async((request_id,), queue=settings.GATEWAY_ASYNC_QUEUE)

    def cancel(self, request_id: str) -> bool:
        return False

    def health(self) -> ComponentHealth:
        raise NotImplementedError


_BACKENDS: dict[str, type[ExecutionBackend]] = {}


def register(cls: type[ExecutionBackend]) -> type[ExecutionBackend]:
    _BACKENDS[cls.name] = cls
    return cls


def get_backend(name: str | None = None) -> ExecutionBackend:
    from django.conf import settings

    return _BACKENDS[name or settings.EXECUTION_BACKEND]()


def result_from_runner(answer: dict) -> ExecutionResult:
    """The runner service's answer as an ExecutionResult."""
    failure = answer.get("failure")
    if failure:
        kind = failure.get("kind")
        if kind == "timeout":
            return ExecutionResult(
                "timeout",
                error={"message": failure["message"], "error_type": "TimeoutError"},
                stdout=failure.get("output", ""),
            )
        if kind in ("busy", "unknown_build", "internal", "sandbox"):
            raise ExecutionUnavailable(failure.get("message", kind))
        error_type = "LoadingError" if kind == "start" else "AlgorithmError"
        return ExecutionResult(
            "failed",
            error={"message": failure["message"], "error_type": error_type},
            stdout=failure.get("output", ""),
        )
    if answer.get("error"):
        return ExecutionResult(
            "failed",
            error=answer["error"],
            stdout=answer.get("stdout", ""),
            duration=answer.get("duration", 0.0),
            cold_start=answer.get("cold_start", False),
        )
    return ExecutionResult(
        "succeeded",
        result=answer.get("result"),
        content_type=answer.get("content_type", "json"),
        stdout=answer.get("stdout", ""),
        duration=answer.get("duration", 0.0),
        cold_start=answer.get("cold_start", False),
    )


from . import celery, http, local  # noqa: E402, F401  (registration)
