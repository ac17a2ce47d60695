"""Execution backends: where one call runs. A backend runs one request and reports its
outcome; it knows nothing of invocations, queues or workers (the gateway's lifecycle does).
The registry `backends` is filled in `ExecutionConfig.ready()`.

- local:  this host's runner service (warm sandboxed processes).
- http:   forwards to the model's inference server (Open Inference Protocol v2 or JSON).

With EXECUTION_BACKEND=celery the gateway sends each call to a worker
(`gateway/lifecycle.py`), which runs it on its own host's `local` backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marketplace.core.health import ComponentHealth
from marketplace.core.registry import Registry


@dataclass
class ExecutionRequest:
    request_id: str
    build_id: str
    content_type: str  # json | text | binary
    data: Any  # as the runner protocol carries it (binary: base64 text)
    timeout: float
    hardware_class: str = "cpu"
    # For the `http` backend: the inference server its build names (the manifest's `http`
    # table: url, protocol, model_name...), passed by the gateway.
    endpoint: dict | None = None
    # What the model acts with on the platform's API while this call runs (the gateway's
    # call credential); None: the model's requests to the API are refused.
    credential: str | None = None


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
    def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run one call and answer its outcome; raise ExecutionUnavailable when it cannot
        be taken now."""
        raise NotImplementedError

    def cancel(self, request_id: str) -> bool:
        """Stop the call `request_id` if it runs here; whether it was stopped."""
        return False

    def health(self) -> ComponentHealth:
        raise NotImplementedError


backends: Registry[ExecutionBackend] = Registry("execution backend")


def get_backend(name: str) -> ExecutionBackend:
    return backends.get(name)


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
