"""What the gateway's lifecycle decides without a worker: which queue a call goes to, and what
/readyz says of execution for each EXECUTION_BACKEND."""

from __future__ import annotations

from django.utils import timezone

from gateway.lifecycle import (
    DISPATCHED,
    execution_health,
    queue_of,
)
from gateway.models import Invocation
from marketplace.core.health import DEGRADED, OK, checks
from marketplace.core.models import WorkerHeartbeat


def test_an_async_call_goes_to_the_async_queue_and_a_dispatched_one_to_its_hardware_queue(
    settings,
):
    settings.GATEWAY_ASYNC_QUEUE = "invocations"
    assert queue_of(Invocation(backend="local", hardware_class="gpu")) == "invocations"
    assert queue_of(Invocation(backend="http", hardware_class="gpu")) == "invocations"
    assert queue_of(Invocation(backend=DISPATCHED, hardware_class="gpu")) == "hw-gpu"


def test_dispatching_to_workers_is_degraded_until_a_live_worker_consumes_a_hardware_queue(
    db, settings
):
    settings.EXECUTION_BACKEND = "celery"
    health = execution_health()
    assert (health.status, health.engine) == (DEGRADED, "celery")
    assert health.message == "no worker consumes a hardware queue"
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="worker@h1", queues=["celery", "hw-gpu"], started_at=now, last_seen=now
    )
    WorkerHeartbeat.objects.create(
        hostname="worker@h2", queues=["hw-cpu"], started_at=now, last_seen=now
    )
    health = checks.get("execution")()
    assert (health.status, health.engine) == (OK, "celery")
    assert health.message == "workers consume hw-cpu, hw-gpu"


def test_the_local_mode_reports_this_hosts_runner(settings, tmp_path):
    settings.EXECUTION_BACKEND = "local"
    settings.RUNNER_SOCKET = str(tmp_path / "no-runner.sock")
    health = checks.get("execution")()
    assert health.engine == "local" and health.status == "down" and not health.required
