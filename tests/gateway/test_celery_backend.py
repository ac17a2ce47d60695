"""The `celery` execution backend. With real processes: a platform whose calls go to the
Celery queue of their hardware class on a Redis of the test's own, where a worker runs them
on its host's runner and the caller waits for the outcome through LISTEN/NOTIFY. On the
database alone: how a waiting caller tells that the worker running its call was lost, and
what it does then (tests/faults/test_celery_two_hosts.py loses a real host)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import UsageRecord
from gateway.lifecycle import (
    RUNNER_WAIT_RETRIES,
    hold_running_call,
    recover_lost_call,
    worker_lost,
)
from gateway.models import Invocation
from gateway.tasks import execute_invocation
from marketplace.core.models import WorkerHeartbeat
from tests.catalog.factories import BuildFactory, VersionFactory
from tests.faults.services import private_redis, redis_server_available
from tests.gateway.factories import InvocationFactory
from tests.live_platform import Platform, call_text, demo_key, publish_with_cli


@pytest.mark.slow
@pytest.mark.skipif(
    not redis_server_available(),
    reason="needs redis-server (apt-get install redis-server; .ci/run does it)",
)
def test_calls_run_on_a_worker_through_the_hardware_queue(server_tmp_path):
    # A Redis of this test's own: no other platform's worker takes its tasks.
    with private_redis() as redis_port:
        platform = Platform(
            server_tmp_path / "var",
            {
                "EXECUTION_BACKEND": "celery",
                "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            },
        )
        try:
            platform.wait_ready()
            secret = demo_key(platform)
            publish_with_cli(
                platform,
                secret,
                server_tmp_path,
                name="shout",
                sample_input="hey",
                predict="import time\n\ndef apply(text):\n    if text == 'slow':\n"
                "        time.sleep(30)\n    return text.upper()\n",
            )

            status, body = call_text(platform, secret, "/v1/algo/demo/shout", "celery")
            assert status == 200, body
            assert body["result"] == "CELERY" and body["metadata"]["content_type"] == "text"
            assert "gateway.tasks.execute_invocation" in platform.output()

            status, body = call_text(platform, secret, "/v1/algo/demo/shout?timeout=2", "slow")
            assert status == 504 and body["error"]["error_type"] == "TimeoutError"
            status, body = call_text(platform, secret, "/v1/algo/demo/shout", "again")
            assert status == 200 and body["result"] == "AGAIN"
        finally:
            assert platform.interrupt() == 0


def _running_call(*, network: bool = False, worker: str = "worker@h1") -> Invocation:
    """A call the celery backend sent to `worker`, which claimed it and is running it, of a
    model with or without network access."""
    build = BuildFactory()
    build.manifest = {**build.manifest, "network": network}
    build.save(update_fields=["manifest"])
    return InvocationFactory(
        version=VersionFactory(model=build.model, build=build),
        status="running",
        backend="celery",
        worker=worker,
        finished_at=None,
        input_data="hello",
        input_content_type="text",
    )


@pytest.fixture
def running_call(db):
    return _running_call()


@pytest.fixture
def listener():
    with connection.independent_connection() as session:
        yield session


def _wait_until_session_ended(listener, backend_pid: int) -> None:
    """A closed connection's server process ends (and lets go of its locks) a moment after
    the client closed it; on a busy machine that moment can be long."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = listener.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend_pid]
        ).fetchone()
        if row is None:
            return
        time.sleep(0.05)
    raise AssertionError(f"the worker's session {backend_pid} did not end")


def test_a_call_whose_worker_session_holds_its_lock_is_not_lost(running_call, listener):
    with connection.independent_connection() as worker_session:
        backend_pid = worker_session.execute("SELECT pg_backend_pid()").fetchone()[0]
        hold_running_call(worker_session, str(running_call.pk))
        assert not worker_lost(listener, running_call)
        assert not worker_lost(listener, running_call)  # looking does not take it away
    # The worker's process (and so its session) is gone; the call is still "running".
    _wait_until_session_ended(listener, backend_pid)
    assert worker_lost(listener, running_call)


def test_a_call_that_finished_is_not_lost_when_its_worker_lets_go(running_call, listener):
    Invocation.objects.filter(pk=running_call.pk).update(status="succeeded")
    assert not worker_lost(listener, running_call)


def test_a_worker_whose_heartbeat_stopped_is_lost_even_if_its_session_lingers(
    running_call, listener
):
    WorkerHeartbeat.objects.create(
        hostname="worker@h1",
        started_at=timezone.now() - timedelta(minutes=5),
        last_seen=timezone.now() - timedelta(minutes=2),
    )
    with connection.independent_connection() as worker_session:
        hold_running_call(worker_session, str(running_call.pk))
        assert worker_lost(listener, running_call)
        WorkerHeartbeat.objects.filter(hostname="worker@h1").update(last_seen=timezone.now())
        assert not worker_lost(listener, running_call)


def test_a_lost_call_without_network_is_queued_again_for_another_worker(running_call):
    assert recover_lost_call(running_call, retry=True)
    again = Invocation.objects.get(pk=running_call.pk)
    assert (again.status, again.worker, again.input_data) == ("queued", "", "hello")
    assert not UsageRecord.objects.filter(request_id=running_call.pk).exists()
    # Another caller that saw the same loss changes nothing.
    assert not recover_lost_call(running_call, retry=True)
    assert Invocation.objects.get(pk=running_call.pk).status == "queued"


@pytest.mark.parametrize("network, retry", [(True, True), (False, False)])
def test_a_lost_call_that_may_not_run_twice_fails_clearly_and_is_not_billed(db, network, retry):
    running_call = _running_call(network=network)
    assert not recover_lost_call(running_call, retry=retry)
    failed = Invocation.objects.get(pk=running_call.pk)
    assert failed.status == "failed" and failed.error["error_type"] == "InterruptedError"
    assert "worker@h1" in failed.error["message"] and "was lost" in failed.error["message"]
    record = UsageRecord.objects.get(request_id=running_call.pk)
    assert record.status == "failed" and not record.billed


def test_the_lock_is_per_call(running_call, listener):
    other = _running_call(worker="worker@h2")
    with connection.independent_connection() as worker_session:
        hold_running_call(worker_session, str(other.pk))
        assert worker_lost(listener, running_call) and not worker_lost(listener, other)


def test_a_worker_whose_runner_is_down_puts_the_call_back_then_fails_it_clearly(
    db, settings, caplog
):
    settings.RUNNER_SOCKET = "/nonexistent/runner.sock"
    call = _running_call(worker="")
    Invocation.objects.filter(pk=call.pk).update(status="queued")
    with caplog.at_level(logging.INFO, logger="celery.app.trace"):
        # Eagerly each retry runs at once; on a real worker it goes back on its queue.
        outcome = execute_invocation.apply(args=(str(call.pk),))
    assert outcome.state == "SUCCESS", outcome.traceback
    retried = [r for r in caplog.records if "Retry in 1s" in r.getMessage()]
    assert len(retried) == RUNNER_WAIT_RETRIES
    failed = Invocation.objects.get(pk=call.pk)
    assert failed.status == "failed" and failed.worker  # the worker that gave up on it
    assert failed.error == {
        "message": "the model runner is not running (/nonexistent/runner.sock)",
        "error_type": "UnavailableError",
    }
    assert not UsageRecord.objects.get(request_id=call.pk).billed
