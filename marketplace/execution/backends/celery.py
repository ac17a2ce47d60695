"""The `celery` backend: a call goes to the Celery queue of its hardware class
(`hw-cpu`, `hw-gpu`, ...); a worker on any host runs it with that host's runner and records
the outcome on the invocation; the caller waits for it through PostgreSQL LISTEN/NOTIFY.
This is how the platform grows past one machine: start more workers, nothing else changes."""

from __future__ import annotations

import time

import psycopg
from django.db import connection

from marketplace.core.health import DEGRADED, OK, ComponentHealth

from . import ExecutionBackend, ExecutionRequest, ExecutionResult, register

WAIT_GRACE_SECONDS = 30


def _listen_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(autocommit=True, **params)


def wait_for_invocation(request_id: str, timeout: float):
    """Block until the invocation is final or `timeout` passes; returns it either way."""
    from marketplace.gateway.models import Invocation
    from marketplace.gateway.services import NOTIFY_CHANNEL

    deadline = time.monotonic() + timeout
    with _listen_connection() as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        while True:
            invocation = Invocation.objects.get(pk=request_id)
            remaining = deadline - time.monotonic()
            if invocation.is_final or remaining <= 0:
                return invocation
            for notice in listener.notifies(timeout=min(remaining, 2.0), stop_after=1):
                if notice.payload == request_id:
                    break


@register
class CeleryBackend(ExecutionBackend):
    name = "celery"

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        # The gateway stored the input on the invocation; the worker reads it from there.
        from marketplace.gateway.models import Invocation, InvocationStatus

        Invocation.objects.filter(pk=request.request_id).update(status=InvocationStatus.QUEUED)
        self.submit(request.request_id, request.hardware_class)
        invocation = wait_for_invocation(request.request_id, request.timeout + WAIT_GRACE_SECONDS)
        if not invocation.is_final:
            self.cancel(request.request_id)
            return ExecutionResult(
                "timeout",
                error={
                    "message": f"no worker finished the call within {request.timeout:g} seconds",
                    "error_type": "TimeoutError",
                },
            )
        return ExecutionResult(
            "succeeded"
            if invocation.status == InvocationStatus.SUCCEEDED
            else ("timeout" if invocation.status == InvocationStatus.TIMEOUT else "failed"),
            result=invocation.result,
            content_type=invocation.result_content_type or "json",
            error=invocation.error,
            stdout=invocation.stdout,
            duration=invocation.model_duration or 0.0,
            cold_start=invocation.cold_start,
            extra={"already_recorded": True},
        )

    def submit(self, request_id: str, hardware_class: str) -> None:
        from marketplace.gateway.tasks import execute_invocation

        execute_invocation.apply_async((request_id,), queue=f"hw-{hardware_class}")

    def cancel(self, request_id: str) -> bool:
        from marketplace.celery import app

        # Workers listen for this broadcast where the transport supports it.
        try:
            app.control.broadcast("cancel_invocation", arguments={"request_id": request_id})
        except Exception:
            return False
        return True

    def health(self) -> ComponentHealth:
        from marketplace.core.heartbeat import live_workers

        queues = sorted({q for w in live_workers() for q in w.queues if q.startswith("hw-")})
        if not queues:
            return ComponentHealth(DEGRADED, "celery", "no worker consumes a hardware queue")
        return ComponentHealth(OK, "celery", f"workers consume {', '.join(queues)}")
