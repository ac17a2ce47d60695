"""output=void: the call is queued and run by a real Celery worker; the invocation resource
follows it; a webhook receives the finished resource signed with the namespace's secret;
a queued call can be canceled."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.db import connection

from billing.models import UsageRecord
from gateway.models import Invocation
from tests.gateway.conftest import key_client
from tests.receivers import allow_outbound
from tests.receivers import webhook_receiver as receiving_webhooks

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver(settings):
    with receiving_webhooks() as receiver:
        allow_outbound(settings, receiver[0])
        yield receiver


def _wait_final(request_id, seconds=60) -> Invocation:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        invocation = Invocation.objects.get(pk=request_id)
        if invocation.is_final:
            return invocation
        time.sleep(0.2)
    raise AssertionError(f"invocation {request_id} never finished")


def test_void_call_runs_later_and_signs_its_webhook(toolbox, owner, async_worker, receiver):
    url, received = receiver
    mine = key_client(owner)
    response = mine.post(
        f"/v1/algo/ada/toolbox?output=void&webhook={url}", {"text": "bg"}, format="json"
    )
    assert response.status_code == 202
    body = response.json()
    assert body["async"] == "void" and body["request_id"] == response["X-Request-ID"]
    invocation = _wait_final(body["request_id"])
    assert invocation.status == "succeeded" and invocation.input_data is None
    resource = mine.get(f"/v1/invocations/{body['request_id']}").json()
    assert resource["result"] == {"echo": {"text": "bg"}} and resource["status"] == "succeeded"
    assert resource["duration"] is not None

    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        time.sleep(0.2)
    headers, payload = received[0]
    secret = mine.get("/v1/teams/ada/signing-secret").json()["secret"]
    expected = "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    assert headers["X-Marketplace-Signature"] == expected
    assert json.loads(payload)["request_id"] == body["request_id"]


def test_a_queued_call_can_be_canceled(toolbox, owner):
    mine = key_client(owner)
    response = mine.post("/v1/algo/ada/toolbox?output=void", {"text": "never"}, format="json")
    request_id = response.json()["request_id"]  # no worker consumes the queue in this test
    canceled = mine.post(f"/v1/invocations/{request_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    from gateway.tasks import execute_invocation

    execute_invocation(request_id)  # a late delivery of the message changes nothing
    assert Invocation.objects.get(pk=request_id).status == "canceled"


def test_a_running_call_canceled_ends_canceled_and_unbilled(toolbox, owner, runner, async_worker):
    """The runner reports the killed process as a failure ("died from signal SIGKILL");
    the cancel is recorded first, so the call ends canceled, with one unbilled usage record,
    and the worker's report of the kill changes nothing."""
    mine = key_client(owner)
    response = mine.post("/v1/algo/ada/toolbox?output=void", {"sleep": 60}, format="json")
    request_id = response.json()["request_id"]
    deadline = time.monotonic() + 60
    while runner.stats()["busy"] == 0:  # the model process is sleeping in the call
        assert time.monotonic() < deadline, "the call never started"
        time.sleep(0.1)
    assert Invocation.objects.get(pk=request_id).status == "running"
    canceled = mine.post(f"/v1/invocations/{request_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    deadline = time.monotonic() + 30
    while runner.stats()["busy"]:  # killed, not done in 60 s
        assert time.monotonic() < deadline, "the process was not killed"
        time.sleep(0.1)
    time.sleep(1)  # the worker has had the runner's report of the kill
    invocation = Invocation.objects.get(pk=request_id)
    assert invocation.status == "canceled", invocation.error
    assert invocation.error == {"message": "canceled by the caller", "error_type": "CanceledError"}
    records = UsageRecord.objects.filter(request_id=request_id)
    assert [(r.status, r.billed, r.total) for r in records] == [("canceled", False, 0)]


def test_signing_secret_is_for_admins(toolbox, owner):
    from tests.factories import MembershipFactory, TeamFactory, UserFactory

    team = TeamFactory(slug="lab")
    member = UserFactory()
    MembershipFactory(team=team, user=member, role="member")
    assert key_client(member).get("/v1/teams/lab/signing-secret").status_code == 403
    assert key_client(UserFactory()).get("/v1/teams/lab/signing-secret").status_code == 404


def test_calls_still_run_after_the_database_ended_every_worker_session(
    toolbox, owner, async_worker
):
    """A worker keeps its database session from one task to the next (CELERY_DB_REUSE_MAX)
    instead of opening one per task; a session PostgreSQL ended meanwhile (a restart, an
    administrator) is noticed before the next task uses it, and that task runs."""
    mine = key_client(owner)
    first = mine.post("/v1/algo/ada/toolbox?output=void", {"text": "1"}, format="json")
    assert _wait_final(first.json()["request_id"]).status == "succeeded"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        ended = [pid for pid, terminated in cursor.fetchall() if terminated]
        assert ended, "no other session to end"
        deadline = time.monotonic() + 30
        while True:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [ended])
            if cursor.fetchone()[0] == 0:
                break
            assert time.monotonic() < deadline, "the sessions did not end"
            time.sleep(0.05)
    second = mine.post("/v1/algo/ada/toolbox?output=void", {"text": "2"}, format="json")
    assert second.status_code == 202, second.content
    invocation = _wait_final(second.json()["request_id"])
    assert invocation.status == "succeeded", invocation.error
