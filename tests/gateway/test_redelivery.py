"""A worker of calls whose consumer starts publishes the calls still queued on its queues
again, so a call whose message a killed worker (or a restarted broker) held runs without
waiting an hour for the broker to hand that message out again
(tests/billing/test_worker_loss.py kills a real one)."""

from __future__ import annotations

import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from billing.models import UsageRecord
from gateway import redelivery
from gateway.models import Invocation
from marketplace.celery import app
from tests.gateway.conftest import key_client
from tests.gateway.factories import InvocationFactory


@pytest.mark.django_db
def test_the_queued_calls_of_a_queue_are_those_a_worker_of_it_would_take(settings):
    settings.GATEWAY_ASYNC_QUEUE = "invocations"
    asynchronous = InvocationFactory(status="queued", backend="local")
    on_cpu = InvocationFactory(status="queued", backend="celery", hardware_class="cpu")
    on_gpu = InvocationFactory(status="queued", backend="celery", hardware_class="gpu")
    InvocationFactory(status="running", backend="local")
    InvocationFactory(status="succeeded", backend="celery", hardware_class="cpu")

    def chosen(queues):
        return set(redelivery.queued_calls_on(queues))

    assert chosen(["invocations"]) == {asynchronous}
    assert chosen(["hw-cpu"]) == {on_cpu}
    assert chosen(["hw-cpu", "hw-gpu", "invocations"]) == {asynchronous, on_cpu, on_gpu}
    assert chosen(["celery", "builds"]) == set()


def _accept_with_lost_message(owner, settings, queue: str) -> str:
    """An asynchronous call accepted while its message goes where no worker looks: as good
    as held by a worker that was killed before it claimed the call. Its request id."""
    settings.GATEWAY_ASYNC_QUEUE = f"{queue}-lost"
    response = key_client(owner).post(
        "/v1/algo/ada/toolbox?output=void", {"text": "again"}, format="json"
    )
    assert response.status_code == 202
    request_id = response.json()["request_id"]
    assert Invocation.objects.get(pk=request_id).status == "queued"
    settings.GATEWAY_ASYNC_QUEUE = queue
    return request_id


def _assert_ran_once(owner, request_id: str) -> None:
    deadline = time.monotonic() + 60
    invocation = Invocation.objects.get(pk=request_id)
    while not invocation.is_final and time.monotonic() < deadline:
        time.sleep(0.2)
        invocation = Invocation.objects.get(pk=request_id)
    assert invocation.status == "succeeded", (invocation.status, invocation.error)
    resource = key_client(owner).get(f"/v1/invocations/{request_id}").json()
    assert resource["result"] == {"echo": {"text": "again"}}
    time.sleep(1)  # a duplicate that were to run it again would record a second time
    assert UsageRecord.objects.filter(request_id=request_id).count() == 1


@pytest.mark.slow
def test_a_call_whose_message_was_lost_runs_when_a_worker_starts(toolbox, owner, settings):
    queue = f"test-redelivery-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{queue}-default"
    settings.SEARCH_SEMANTIC = False  # no NumPy in a worker thread of a test that forks
    request_id = _accept_with_lost_message(owner, settings, queue)
    # A worker of that queue starts: its consumer publishes the waiting call again.
    with start_worker(
        app,
        queues=[queue],
        perform_ping_check=False,
        pool="threads",
        concurrency=2,
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        _assert_ran_once(owner, request_id)


@pytest.mark.slow
def test_a_call_whose_message_was_lost_runs_once_when_published_again(
    toolbox, owner, async_worker, settings
):
    request_id = _accept_with_lost_message(owner, settings, async_worker)
    # Twice, as two workers starting together would: the call still runs once.
    assert redelivery.queued_calls_republish([async_worker]) == 1
    redelivery.queued_calls_republish([async_worker])
    _assert_ran_once(owner, request_id)
