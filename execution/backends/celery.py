"""The `celery` backend: a call goes to the Celery queue of its hardware class
(`hw-cpu`, `hw-gpu`, ...); a worker on any host runs it with that host's runner and records
the outcome on the invocation; the caller waits for it through PostgreSQL LISTEN/NOTIFY.
This is how the platform grows past one machine: start more workers, nothing else changes.

A worker holds a PostgreSQL advisory lock on the call from its claim to its outcome, in its
own database session, so the lock goes when the worker's process does. A caller that finds
its running call's lock free and no outcome knows the host was lost: it queues the call
again for another worker when that is safe (a model without network access has no effect
but its answer; the request id keeps it to one outcome and one usage record), else it fails
the call with a clear error instead of waiting for the timeout."""

from __future__ import annotations

import logging
import time

import psycopg
from django.db import connection
from django.utils import timezone

from marketplace.core.health import DEGRADED, OK, ComponentHealth

from . import ExecutionBackend, ExecutionRequest, ExecutionResult, register

logger = logging.getLogger(__name__)

WAIT_GRACE_SECONDS = 30
# How many times a caller queues its call again after losing the worker that ran it.
LOST_WORKER_RETRIES = 1
# Namespaces this lock among the application's advisory locks (hashtextextended's seed).
_RUNNING_LOCK_SEED = 0x6D70_6361_6C6C


def hold_running_call(cursor, request_id: str) -> None:
    """Taken by the worker inside the transaction that claims the call, so the claim is
    never visible without it; held by its session until `release_running_call`."""
    cursor.execute(
        "SELECT pg_advisory_lock(hashtextextended(%s, %s))", [request_id, _RUNNING_LOCK_SEED]
    )


def release_running_call(cursor, request_id: str) -> None:
    cursor.execute(
        "SELECT pg_advisory_unlock(hashtextextended(%s, %s))", [request_id, _RUNNING_LOCK_SEED]
    )


def worker_lost(listener: psycopg.Connection, invocation) -> bool:
    """Whether the worker that claimed this running call is gone: its session no longer
    holds the call's lock, or its heartbeat stopped."""
    from gateway.models import Invocation, InvocationStatus
    from marketplace.core.heartbeat import ALIVE_WITHIN
    from marketplace.core.models import WorkerHeartbeat

    key = [str(invocation.pk), _RUNNING_LOCK_SEED]
    if listener.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, %s))", key).fetchone()[0]:
        try:
            # A worker releases the lock only after its outcome commits: read after taking
            # it, a call still running on that worker has lost its worker.
            return Invocation.objects.filter(
                pk=invocation.pk, status=InvocationStatus.RUNNING, worker=invocation.worker
            ).exists()
        finally:
            listener.execute("SELECT pg_advisory_unlock(hashtextextended(%s, %s))", key)
    return WorkerHeartbeat.objects.filter(
        hostname=invocation.worker, last_seen__lt=timezone.now() - ALIVE_WITHIN
    ).exists()


def recover_lost_call(invocation, *, retry: bool) -> bool:
    """The worker running `invocation` was lost: queue it again (`retry`, and the model has no
    network access, so running it twice has no effect but its answer), else fail it with a
    clear error. Only the caller that still sees it running on that worker acts. Returns
    whether it was queued again."""
    from gateway import services
    from gateway.models import Invocation, InvocationStatus

    lost = invocation.worker
    logger.warning("worker %s was lost while running invocation %s", lost, invocation.pk)
    if retry and not invocation.build.manifest.get("network", False):
        requeued = Invocation.objects.filter(
            pk=invocation.pk, status=InvocationStatus.RUNNING, worker=lost
        ).update(status=InvocationStatus.QUEUED, worker="")
        if requeued:
            CeleryBackend().submit(str(invocation.pk), invocation.hardware_class)
        return bool(requeued)
    services.finish(
        invocation,
        ExecutionResult(
            "failed",
            error={
                "message": f"the worker running this call ({lost}) was lost before it "
                "finished; nothing was returned",
                "error_type": "InterruptedError",
            },
        ),
    )
    return False


def _listen_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(autocommit=True, **params)


def wait_for_invocation(request_id: str, timeout: float):
    """Block until the invocation is final or `timeout` passes; returns it either way."""
    from gateway.models import Invocation, InvocationStatus
    from gateway.services import NOTIFY_CHANNEL

    deadline = time.monotonic() + timeout
    retries = LOST_WORKER_RETRIES
    with _listen_connection() as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        while True:
            invocation = Invocation.objects.select_related("build").get(pk=request_id)
            remaining = deadline - time.monotonic()
            if invocation.is_final or remaining <= 0:
                return invocation
            if (
                invocation.status == InvocationStatus.RUNNING
                and invocation.worker
                and worker_lost(listener, invocation)
            ):
                if recover_lost_call(invocation, retry=retries > 0):
                    retries -= 1
                continue
            for notice in listener.notifies(timeout=min(remaining, 2.0), stop_after=1):
                if notice.payload == request_id:
                    break


@register
class CeleryBackend(ExecutionBackend):
    name = "celery"

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        # The gateway stored the input on the invocation; the worker reads it from there.
        from gateway.models import Invocation, InvocationStatus

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
        from gateway.tasks import execute_invocation

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
