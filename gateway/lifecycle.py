"""The life of an invocation once its row exists: submitting it to a queue, running it on an
execution backend, waiting for it, recovering it when the worker running it was lost,
recording its outcome exactly once, cancelling it, and reaping it when it was abandoned.
An execution backend (`execution/backends/`) only runs one request and reports its outcome.

Two modes, chosen by EXECUTION_BACKEND (`Invocation.backend` records which one a call took):

- `local`: the process that took the call runs it on this host's `local` backend (an
  `http` build always runs on the `http` backend).
- `celery` (`DISPATCHED`): a call goes to the Celery queue of its hardware class (`hw-cpu`,
  `hw-gpu`, ...); a worker on any host runs it with that host's runner and records the
  outcome on the invocation; the caller waits for it through PostgreSQL LISTEN/NOTIFY. This
  is how the platform grows past one machine: start more workers, nothing else changes.

A worker holds a PostgreSQL advisory lock on the call from its claim to its outcome, in its
own database session, so the lock goes when the worker's process does. A caller that finds
its running call's lock free and no outcome knows the host was lost: it queues the call
again for another worker when that is safe (a model without network access has no effect
but its answer; the request id keeps it to one outcome and one usage record), else it fails
the call with a clear error instead of waiting for the timeout.

Asynchronous calls (`output=void`) go to the queue GATEWAY_ASYNC_QUEUE, or, dispatched, to
their hardware queue; a worker claims and runs them the same way."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import psycopg
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from billing import metering
from execution.backends import (
    ExecutionRequest,
    ExecutionResult,
    ExecutionUnavailable,
    get_backend,
)
from execution.runner_service import RunnerClient
from marketplace.core import metrics
from marketplace.core.errors import UnavailableError
from marketplace.core.health import DEGRADED, OK, ComponentHealth
from marketplace.core.heartbeat import ALIVE_WITHIN, live_workers
from marketplace.core.limits import Slot
from marketplace.core.models import WorkerHeartbeat
from marketplace.core.postgresql.compiled import CompiledRead

from . import call_bodies
from .call_credentials import call_credential_issue
from .models import Invocation, InvocationStatus

logger = logging.getLogger(__name__)

# Queued by name: gateway/tasks.py calls this module, so this module does not import it.
EXECUTE_INVOCATION_TASK = "marketplace.gateway.tasks.execute_invocation"
DELIVER_WEBHOOK_TASK = "marketplace.gateway.tasks.deliver_invocation_webhook"

# The EXECUTION_BACKEND (and Invocation.backend) under which calls are sent to workers.
DISPATCHED = "celery"
NOTIFY_CHANNEL = "invocation_finished"
WAIT_GRACE_SECONDS = 30
# How many times a caller queues its call again after losing the worker that ran it.
LOST_WORKER_RETRIES = 1
# How many times (a second apart) a worker whose host's runner is not up puts a call back.
RUNNER_WAIT_RETRIES = 10
# Namespaces this lock among the application's advisory locks (hashtextextended's seed).
_RUNNING_LOCK_SEED = 0x6D70_6361_6C6C


class RunnerNotReady(Exception):
    """This worker's host cannot run the call now (its runner is starting or down): the call
    stays queued, and goes back on its queue for any worker whose host can."""


# Submitting.


def queue_of(invocation: Invocation) -> str:
    """The Celery queue a worker takes the call from: its hardware class's when it is
    dispatched to workers, else the queue of asynchronous calls."""
    if invocation.backend == DISPATCHED:
        return f"hw-{invocation.hardware_class}"
    return settings.GATEWAY_ASYNC_QUEUE


def submit(invocation: Invocation) -> None:
    """Put the call on its queue (`queue_of`) for a worker to claim and run."""
    current_app.send_task(
        EXECUTE_INVOCATION_TASK, args=(str(invocation.pk),), queue=queue_of(invocation)
    )


def enqueue_invocation(invocation: Invocation) -> None:
    """Queue an asynchronous call; a queue that refuses it leaves it failed, as nothing will
    run it."""
    try:
        submit(invocation)
    except Exception:
        logger.exception("could not queue invocation %s", invocation.pk)
        finish(
            invocation,
            ExecutionResult(
                "failed",
                error={
                    "message": "the task queue is unavailable; nothing was run",
                    "error_type": "UnavailableError",
                },
            ),
        )


# Running.


def run_invocation(
    invocation: Invocation, data, *, backend: str | None = None, slot: Slot | None = None
) -> Invocation:
    """Run a claimed-or-new invocation synchronously on its backend (or `backend`, as a
    worker does for calls dispatched to it) and record the outcome. A dispatched call is sent
    to a worker and waited for. A backend that cannot take the call leaves the invocation
    failed and raises 503. `slot`, the concurrency slot the call holds, is released by the
    statement that records the outcome where it can be (`_record_final`)."""
    if invocation.status != InvocationStatus.RUNNING:
        invocation.status = InvocationStatus.RUNNING
        invocation.started_at = timezone.now()
        Invocation.objects.filter(pk=invocation.pk).update(
            status=invocation.status, started_at=invocation.started_at
        )
    backend = backend or invocation.backend
    request = ExecutionRequest(
        request_id=str(invocation.pk),
        build_id=str(invocation.build_id),
        content_type=invocation.input_content_type,
        data=data,
        timeout=invocation.timeout_seconds,
        hardware_class=invocation.hardware_class,
        endpoint=invocation.build.manifest.get("http") if backend == "http" else None,
        credential=call_credential_issue(invocation) if backend != "http" else None,
    )
    try:
        if backend == DISPATCHED:
            result = run_on_a_worker(invocation, request)
        else:
            result = get_backend(backend).run(request)
    except ExecutionUnavailable as exc:
        finish(
            invocation,
            ExecutionResult(
                "failed", error={"message": str(exc), "error_type": "UnavailableError"}
            ),
            slot=slot,
        )
        raise UnavailableError(f"the model cannot be run right now: {exc}") from None
    except BaseException:
        finish(
            invocation,
            ExecutionResult(
                "failed", error={"message": "internal error", "error_type": "ServerError"}
            ),
            slot=slot,
        )
        raise
    finish(invocation, result, slot=slot)
    return invocation


def run_on_a_worker(invocation: Invocation, request: ExecutionRequest) -> ExecutionResult:
    """A dispatched call: queue it on its hardware class's queue and wait until a worker has
    recorded its outcome (the invocation stored its input; the worker reads it from there).
    No outcome within the timeout (and a grace): the call is cancelled and times out."""
    Invocation.objects.filter(pk=request.request_id).update(status=InvocationStatus.QUEUED)
    submit(invocation)
    waited = wait_for_invocation(request.request_id, request.timeout + WAIT_GRACE_SECONDS)
    if not waited.is_final:
        cancel_on_workers(request.request_id)
        return ExecutionResult(
            "timeout",
            error={
                "message": f"no worker finished the call within {request.timeout:g} seconds",
                "error_type": "TimeoutError",
            },
        )
    return ExecutionResult(
        "succeeded"
        if waited.status == InvocationStatus.SUCCEEDED
        else ("timeout" if waited.status == InvocationStatus.TIMEOUT else "failed"),
        result=waited.result,
        content_type=waited.result_content_type or "json",
        error=waited.error,
        stdout=waited.stdout,
        duration=waited.model_duration or 0.0,
        cold_start=waited.cold_start,
        extra={"already_recorded": True},
    )


# Waiting for a worker, and noticing that it was lost.


def wait_for_invocation(request_id: str, timeout: float) -> Invocation:
    """Block until the invocation is final or `timeout` passes; returns it either way."""
    deadline = time.monotonic() + timeout
    retries = LOST_WORKER_RETRIES
    with connection.independent_connection() as listener:
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


def hold_running_call(cursor, request_id: str) -> None:
    """The lock a worker's session holds on a call it runs, until `release_running_call`.
    A worker takes it in the statement that claims the call (`_CLAIM_AND_LOCK_SQL`); this takes it
    for a session that stands in for a worker."""
    cursor.execute(
        "SELECT pg_advisory_lock(hashtextextended(%s, %s))", [request_id, _RUNNING_LOCK_SEED]
    )


def release_running_call(cursor, request_id: str) -> None:
    cursor.execute(
        "SELECT pg_advisory_unlock(hashtextextended(%s, %s))", [request_id, _RUNNING_LOCK_SEED]
    )


def worker_lost(listener: psycopg.Connection, invocation: Invocation) -> bool:
    """Whether the worker that claimed this running call is gone: its session no longer
    holds the call's lock, or its heartbeat stopped."""
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


def recover_lost_call(invocation: Invocation, *, retry: bool) -> bool:
    """The worker running `invocation` was lost: queue it again (`retry`, and the model has no
    network access, so running it twice has no effect but its answer), else fail it with a
    clear error. Only the caller that still sees it running on that worker acts. Returns
    whether it was queued again."""
    lost = invocation.worker
    logger.warning("worker %s was lost while running invocation %s", lost, invocation.pk)
    if retry and not invocation.build.manifest.get("network", False):
        requeued = Invocation.objects.filter(
            pk=invocation.pk, status=InvocationStatus.RUNNING, worker=lost
        ).update(status=InvocationStatus.QUEUED, worker="")
        if requeued:
            submit(invocation)
        return bool(requeued)
    finish(
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


# The worker's side.


def execute_queued(request_id: str, *, worker: str, put_back_if_runner_down: bool) -> None:
    """Runs on whichever worker takes the call, with that host's runner, and records that
    worker on the invocation. Idempotent: only a queued invocation is claimed; a redelivered
    message finds it running or final and stops. While a dispatched call runs (its caller
    waits for it), this worker's database session holds the call's lock, which tells that
    caller the worker is alive (`worker_lost`); an asynchronous call has no caller waiting,
    and one whose worker was lost is finished by the reaper. Raises RunnerNotReady, the call
    left queued, when this host's runner is not up and `put_back_if_runner_down`."""
    held = False
    try:
        invocation = _read_queued(request_id)
        if invocation is None:
            return
        # On this worker a call dispatched here runs on this host's runner.
        dispatched = invocation.backend == DISPATCHED
        backend = "local" if dispatched else invocation.backend
        if backend == "local" and put_back_if_runner_down and not _runner_ready():
            raise RunnerNotReady(request_id)
        started_at = timezone.now()
        claim = (InvocationStatus.RUNNING, started_at, worker[:255], request_id)
        with connection.prepared_cursor() as cursor:
            if dispatched:
                lock = (InvocationStatus.QUEUED, request_id, _RUNNING_LOCK_SEED)
                cursor.execute(_CLAIM_AND_LOCK_SQL, [*claim, *lock])
                held = cursor.fetchone() is not None
                claimed = held
            else:
                cursor.execute(_CLAIM_SQL, [*claim, InvocationStatus.QUEUED])
                claimed = cursor.fetchone() is not None
        if not claimed:
            return  # claimed by another worker, or cancelled, since the read
        invocation.status = InvocationStatus.RUNNING
        invocation.started_at = started_at
        invocation.worker = worker[:255]
        try:
            run_invocation(invocation, invocation.input_data, backend=backend)
        except Exception as exc:  # the outcome is recorded by run_invocation
            finish(
                invocation,
                ExecutionResult(
                    "failed", error={"message": str(exc), "error_type": "UnavailableError"}
                ),
            )
    finally:
        # A broken session has lost the lock with it.
        if held and connection.is_usable():
            with connection.cursor() as cursor:
                release_running_call(cursor, request_id)


# What a worker needs of a queued call (its model and owner for the usage record and the
# logs, its build, version and key) in one read, unlocked: the claim decides. Compiled once
# per process: compiling this select_related query was half of a worker's CPU per call.
_read_queued = CompiledRead(
    Invocation,
    lambda pk: (
        Invocation.objects.select_related("model__owner", "version", "build", "api_key")
        .filter(pk=pk, status=InvocationStatus.QUEUED)
        .order_by()
    ),
)

# The claim: only a still-queued call becomes running on this worker.
_CLAIM_SQL = (
    "UPDATE gateway_invocation SET status = %s, started_at = %s, worker = %s "
    "WHERE id = %s AND status = %s RETURNING id"
)
# The claim of a dispatched call, whose lock (see `hold_running_call`) is taken by the same
# statement, so the claim is never visible without it.
_CLAIM_AND_LOCK_SQL = (
    "UPDATE gateway_invocation SET status = %s, started_at = %s, worker = %s "
    "WHERE id = %s AND status = %s "
    "RETURNING pg_advisory_lock(hashtextextended(%s, %s))"
)


def _runner_ready() -> bool:
    return RunnerClient().is_up()


# Recording the outcome.


def storable(value):
    """PostgreSQL's text and jsonb cannot hold U+0000; what is stored (not what the caller
    receives) has it escaped."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value


def finish(
    invocation: Invocation,
    result: ExecutionResult,
    *,
    status: str | None = None,
    slot: Slot | None = None,
) -> bool:
    """Record the outcome once: a second finish (a retried task, a cancel racing the end)
    changes nothing. Returns whether this call recorded it. The same statement releases
    `slot` when it can (`_record_final`)."""
    status = status or {
        "succeeded": InvocationStatus.SUCCEEDED,
        "timeout": InvocationStatus.TIMEOUT,
    }.get(result.status, InvocationStatus.FAILED)
    now = timezone.now()
    output_bytes = len(json.dumps(result.result)) if result.result is not None else 0
    fields = {
        "status": status,
        "result": storable(result.result),
        "result_content_type": result.content_type,
        "error": storable(result.error),
        "stdout": storable((result.stdout or "")[:65536]),
        "cold_start": result.cold_start,
        "model_duration": result.duration,
        "output_bytes": output_bytes,
        "finished_at": now,
        "input_data": None,
    }
    invocation.started_at = invocation.started_at or now
    for key, value in fields.items():
        setattr(invocation, key, value)
    updated = _record_final(invocation, {**fields, "started_at": invocation.started_at}, slot)
    if updated and invocation.keep_bodies:
        call_bodies.output_keep(invocation, content_type=result.content_type, data=result.result)
    # The caller receives exactly what the model answered.
    invocation.result, invocation.error = result.result, result.error
    invocation.stdout = (result.stdout or "")[:65536]
    if not updated:
        _told_the_recorded_cancel(invocation)
    metrics.invocation_finished(invocation, recorded=bool(updated))
    if updated and invocation.webhook_url and _announced(invocation):
        transaction.on_commit(lambda: _queue_webhook(invocation))
    return bool(updated)


def _told_the_recorded_cancel(invocation: Invocation) -> None:
    """A call canceled while it ran was recorded canceled before its process was killed
    (`cancel`); the caller still waiting for it is told that, not the kill it caused."""
    recorded = (
        Invocation.objects.filter(pk=invocation.pk, status=InvocationStatus.CANCELED)
        .values_list("error", flat=True)
        .first()
    )
    if recorded is not None:
        invocation.status, invocation.error = InvocationStatus.CANCELED, recorded
        invocation.result, invocation.stdout = None, ""


def _announced(invocation: Invocation) -> bool:
    """Whether the end of this call is announced on NOTIFY_CHANNEL (by `_record_final`): only
    a caller waiting on another host (a dispatched call) listens, and async calls may have
    their invocation waited for."""
    return invocation.is_async or invocation.backend == DISPATCHED


_FINAL_UPDATE = (
    "UPDATE gateway_invocation SET {sets} WHERE id = %s AND status IN (%s, %s) RETURNING id"
)


def _record_final(invocation: Invocation, fields: dict, slot: Slot | None = None) -> bool:
    """Give a queued or running invocation its final `fields`, its usage record and (when
    `_announced`) its NOTIFY, in one statement (one round trip, atomic by itself): they
    commit together or not at all. The statement also releases the call's concurrency
    `slot` (whether or not it records the outcome) when the slot allows it
    (`Slot.release_statement`). Returns whether this call recorded them."""
    meta = Invocation._meta
    columns = [meta.get_field(name) for name in fields]
    sets = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in columns)
    params = [field.get_db_prep_save(fields[field.name], connection) for field in columns]
    params += [invocation.pk, InvocationStatus.QUEUED, InvocationStatus.RUNNING]
    sql = f"WITH finished AS ({_FINAL_UPDATE.format(sets=sets)})"
    release = slot.release_statement() if slot is not None else None
    if release is not None:
        sql += f", released AS ({release[0]})"
        params += release[1]
    usage = metering.usage_write(invocation, after="finished")
    if usage is not None:
        sql += f", {usage.sql} SELECT (SELECT count(*) FROM finished), {usage.spent_sql}"  # noqa: S608
        params += usage.params
    else:
        sql += " SELECT (SELECT count(*) FROM finished), NULL"
    if _announced(invocation):
        # Sent at commit, and only if this statement recorded the outcome.
        sql += ", (SELECT pg_notify(%s, id::text) FROM finished)"
        params.append(NOTIFY_CHANNEL)
    with connection.prepared_cursor() as cursor:
        cursor.execute(sql, params)
        updated, spent = cursor.fetchone()[:2]
    if release is not None:
        slot.released = True
    if updated and usage is not None:
        usage.recorded(spent)
    return bool(updated)


def _queue_webhook(invocation: Invocation) -> None:
    try:
        current_app.send_task(
            DELIVER_WEBHOOK_TASK,
            args=(str(invocation.pk),),
            queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        )
    except Exception:
        logger.exception("could not queue the webhook of invocation %s", invocation.pk)


# Cancelling.


def cancel_on_workers(request_id: str) -> bool:
    """Ask every worker to kill the dispatched call `request_id` if it runs on its host (the
    `cancel_invocation` control command, marketplace/celery.py)."""
    # Workers listen for this broadcast where the transport supports it.
    try:
        current_app.control.broadcast("cancel_invocation", arguments={"request_id": request_id})
    except Exception:
        return False
    return True


def cancel(invocation: Invocation) -> Invocation:
    """Cancel a call that is not final yet: record it canceled (unbilled), then stop it where
    it runs. In that order: the process that runs the call reports the kill as a failure
    ("died from signal SIGKILL") and records it, so a kill sent first would let that failure
    win the race to the one final status. Recorded first, the runner's report changes
    nothing (`_record_final` only moves a queued or running row). A call that finished
    before the cancel was recorded keeps its outcome, and nothing is killed."""
    if invocation.is_final:
        return invocation
    was_running = invocation.status == InvocationStatus.RUNNING
    recorded = finish(
        invocation,
        ExecutionResult(
            "failed", error={"message": "canceled by the caller", "error_type": "CanceledError"}
        ),
        status=InvocationStatus.CANCELED,
    )
    invocation.refresh_from_db()
    # A queued call claimed by a worker just before the cancel is running there now.
    if recorded and (was_running or invocation.worker):
        if invocation.backend == DISPATCHED:
            cancel_on_workers(str(invocation.pk))
        else:
            get_backend(invocation.backend).cancel(str(invocation.pk))
    return invocation


# Reaping.


def invocations_reap(*, now=None) -> int:
    """Give every abandoned call its final status (and so its usage record). Returns how
    many were reaped."""
    now = now or timezone.now()
    deadline = ExpressionWrapper(
        F("timeout_seconds") * timedelta(seconds=1)
        + timedelta(seconds=settings.GATEWAY_REAP_GRACE_SECONDS),
        output_field=DurationField(),
    )
    stale = (
        Invocation.objects.select_related("model__owner", "version", "api_key")
        .annotate(deadline=deadline)
        .filter(
            Q(status=InvocationStatus.RUNNING, started_at__lt=now - F("deadline"))
            | Q(
                status=InvocationStatus.QUEUED,
                created_at__lt=now - timedelta(seconds=settings.GATEWAY_QUEUED_LIMIT_SECONDS),
            )
        )[:500]
    )
    reaped = 0
    for invocation in stale:
        lost = invocation.status == InvocationStatus.RUNNING
        message = (
            "the process running this call stopped before it finished; nothing was returned"
            if lost
            else "this call waited too long in the queue and was not run"
        )
        reaped += finish(
            invocation,
            ExecutionResult("failed", error={"message": message, "error_type": "InterruptedError"}),
        )
    if reaped:
        logger.warning("reaped %d abandoned invocations", reaped)
    return reaped


# Health.


def execution_health() -> ComponentHealth:
    """The `execution` component of /readyz for EXECUTION_BACKEND: with `celery`, which
    hardware queues live workers consume (degraded when none does); else the backend's own."""
    if settings.EXECUTION_BACKEND != DISPATCHED:
        return get_backend(settings.EXECUTION_BACKEND).health()
    queues = sorted({q for w in live_workers() for q in w.queues if q.startswith("hw-")})
    if not queues:
        return ComponentHealth(DEGRADED, "celery", "no worker consumes a hardware queue")
    return ComponentHealth(OK, "celery", f"workers consume {', '.join(queues)}")
