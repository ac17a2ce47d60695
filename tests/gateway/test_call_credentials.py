"""A call's credential through the real API (no sandbox here; test_nested_calls.py drives it
from inside one): it acts as the caller on the model API paths only, dies with its call and
at its deadline, and nested calls are refused past the depth limit, after their parent's
time, and asynchronously."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.call_credentials import call_credential_issue
from gateway.models import InvocationStatus
from tests.factories import UserFactory, make_key
from tests.gateway.factories import InvocationFactory


@pytest.fixture
def running(db):
    """A call ada's key made, running now with a minute to go."""
    ada = UserFactory(username="ada")
    key, _secret = make_key(ada, project="research")
    return InvocationFactory(
        caller_team=ada.personal_team,
        caller_user=ada,
        api_key=key,
        project="research",
        status=InvocationStatus.RUNNING,
        started_at=timezone.now(),
        finished_at=None,
        timeout_seconds=60,
    )


def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {token}")
    return client


def test_it_acts_as_the_caller_on_the_model_api_only(running):
    client = api(call_credential_issue(running))
    listing = client.get("/v1/data/.my")
    assert listing.status_code == 200, listing.content
    refused = client.get(f"/v1/invocations/{running.pk}")
    assert refused.status_code == 403
    assert "may only call models and use data" in refused.json()["error"]["message"]
    assert client.get("/v1/keys").status_code == 403


def test_it_dies_when_its_call_ends(running):
    client = api(call_credential_issue(running))
    assert client.get("/v1/data/.my").status_code == 200
    running.status = InvocationStatus.SUCCEEDED
    running.save(update_fields=["status"])
    answer = client.get("/v1/data/.my")
    assert answer.status_code == 401
    assert "died when its call ended" in answer.json()["error"]["message"]


def test_it_expires_at_its_calls_deadline(running):
    running.started_at = timezone.now() - timedelta(seconds=61)
    running.save(update_fields=["started_at"])
    answer = api(call_credential_issue(running)).get("/v1/data/.my")
    assert answer.status_code == 401
    assert "expired" in answer.json()["error"]["message"]


def test_a_forged_or_altered_credential_is_refused(running):
    token = call_credential_issue(running)
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert api(altered).get("/v1/data/.my").status_code == 401
    assert api("mpcall_e30:forged").get("/v1/data/.my").status_code == 401


def test_a_call_past_the_depth_limit_is_a_508(running, settings):
    settings.NESTED_CALLS_MAX_DEPTH = 3
    running.depth = 3
    running.save(update_fields=["depth"])
    answer = api(call_credential_issue(running)).post(
        "/v1/algo/ada/anything", {"x": 1}, format="json"
    )
    assert answer.status_code == 508
    assert answer.json()["error"]["error_type"] == "LoopDetected"


def test_a_parent_out_of_time_cannot_call(running):
    running.started_at = timezone.now() - timedelta(seconds=59.8)
    running.save(update_fields=["started_at"])
    answer = api(call_credential_issue(running)).post(
        "/v1/algo/ada/anything", {"x": 1}, format="json"
    )
    assert answer.status_code in (401, 504)  # no time left, or already past the deadline


def test_a_running_model_cannot_start_an_asynchronous_call(running):
    answer = api(call_credential_issue(running)).post(
        "/v1/algo/ada/anything?output=void", {"x": 1}, format="json"
    )
    assert answer.status_code == 400
    assert "asynchronous" in answer.json()["error"]["message"]
