"""Call history through the real call path (a real runner, sandboxed processes): inputs and
outputs are kept only when the key or the call asks, within the size limit; the calls the
platform refuses with a 4xx are recorded for their caller with their reason, one row per
caller, reason and minute however many arrive."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from billing.budgets.selectors import current_month
from billing.models import Budget, MonthlySpend
from gateway.models import Invocation, KeptCallBody, RefusedCall
from marketplace.accounts.models import ApiKey
from tests.conftest import assert_error_shape
from tests.factories import make_key
from tests.gateway.conftest import key_client
from tests.gateway.test_async import _wait_final

pytestmark = pytest.mark.slow


def test_bodies_are_kept_only_when_asked(toolbox, owner, settings):
    plain = key_client(owner)
    response = plain.post("/v1/algo/ada/toolbox", {"text": "private"}, format="json")
    assert response.status_code == 200
    unasked = Invocation.objects.get(pk=response.json()["request_id"])
    assert not unasked.keep_bodies
    assert not KeptCallBody.objects.exists()

    asked = plain.post("/v1/algo/ada/toolbox?keep_io=true", {"text": "keep me"}, format="json")
    body = KeptCallBody.objects.get(pk=asked.json()["request_id"])
    assert body.input_text == '{"text": "keep me"}' and body.input_kept
    assert body.output_text == '{"echo": {"text": "keep me"}}' and body.output_kept
    assert body.output_content_type == "json" and body.team.slug == "ada"

    keeping_key, secret = make_key(owner, name="keeper")
    ApiKey.objects.filter(pk=keeping_key.pk).update(keep_call_bodies=True)
    keeper = key_client(owner)
    keeper.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    kept = keeper.generic("POST", "/v1/algo/ada/toolbox", "shout", content_type="text/plain")
    body = KeptCallBody.objects.get(pk=kept.json()["request_id"])
    assert (body.input_text, body.output_text) == ("shout", "SHOUT")
    # The call's parameter overrides the key, either way.
    declined = keeper.post("/v1/algo/ada/toolbox?keep_io=false", {"text": "no"}, format="json")
    assert not KeptCallBody.objects.filter(pk=declined.json()["request_id"]).exists()
    assert_error_shape(
        keeper.post("/v1/algo/ada/toolbox?keep_io=perhaps", {}, format="json"), 400, "InputError"
    )

    settings.CALL_BODY_KEEP_MAX_BYTES = 64
    payload = bytes(range(256))
    binary = keeper.generic(
        "POST", "/v1/algo/ada/toolbox", payload, content_type="application/octet-stream"
    )
    body = KeptCallBody.objects.get(pk=binary.json()["request_id"])
    assert not body.input_kept and body.input_truncated and body.input_text == ""
    long_text = keeper.generic("POST", "/v1/algo/ada/toolbox", "a" * 100, content_type="text/plain")
    assert base64.b64decode(binary.json()["result"]) == payload[::-1]  # the caller got it all
    body = KeptCallBody.objects.get(pk=long_text.json()["request_id"])
    assert body.input_text == "a" * 64 and body.input_truncated
    assert body.output_text == "A" * 64 and body.output_truncated


def test_refused_calls_are_recorded_with_their_reason(toolbox, owner, settings):
    key, secret = make_key(owner, name="ci")
    client = key_client(owner)
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    narrow_key, narrow_secret = make_key(owner, name="narrow", scopes=["algo://someone/*"])
    narrow = key_client(owner)
    narrow.credentials(HTTP_AUTHORIZATION=f"Simple {narrow_secret}")

    refused = {
        "AuthorizationError": narrow.post("/v1/algo/ada/toolbox", {}, format="json"),
        "NotFoundError": client.post("/v1/algo/ada/nothing-here", {}, format="json"),
        "InputError": client.post("/v1/algo/ada/toolbox", {"text": 1}, format="json"),
    }
    version = client.post("/v1/algo/ada/toolbox/9.9.9", {}, format="json")
    assert version.status_code == 404
    settings.GATEWAY_MAX_BODY_BYTES = 100
    too_large = client.generic("POST", "/v1/algo/ada/toolbox", "x" * 101, content_type="text/plain")
    assert_error_shape(too_large, 413, "RequestTooLargeError")
    settings.GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
    # A key that does not authenticate cannot be attributed: nothing is recorded for it.
    anonymous = key_client(owner)
    anonymous.credentials(HTTP_AUTHORIZATION="Simple mk_not_a_real_key")
    assert anonymous.post("/v1/algo/ada/toolbox", {}, format="json").status_code == 401

    # The first of each reason (a minute may turn between two refusals of the same reason).
    rows = {row.reason: row for row in RefusedCall.objects.order_by("-first_at")}
    counts = {}
    for row in RefusedCall.objects.all():
        counts[row.reason] = counts.get(row.reason, 0) + row.count
    for reason, response in refused.items():
        assert response.json()["error"]["error_type"] == reason
        row = rows[reason]
        assert row.message == response.json()["error"]["message"]
        assert row.status_code == response.status_code
        if counts[reason] == 1:
            assert str(row.request_id) == response["X-Request-ID"]
        assert row.team.slug == "ada"
    assert rows["AuthorizationError"].api_key == narrow_key
    assert rows["NotFoundError"].api_key == key and counts["NotFoundError"] == 2
    assert rows["NotFoundError"].model_name == "ada/nothing-here"
    assert rows["RequestTooLargeError"].api_key == key
    assert rows["RequestTooLargeError"].status_code == 413
    assert set(rows) == {*refused, "RequestTooLargeError"}
    assert not Invocation.objects.exists()  # nothing was run


def test_a_flood_of_refusals_costs_one_row_a_minute(toolbox, owner, settings):
    settings.RATE_LIMIT_PER_KEY_PER_MINUTE = 1
    key, secret = make_key(owner, name="flood")
    client = key_client(owner)
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    assert client.post("/v1/algo/ada/toolbox", {}, format="json").status_code == 200
    statuses = [
        client.post("/v1/algo/ada/toolbox", {}, format="json").status_code for _ in range(25)
    ]
    assert statuses == [429] * 25
    rows = list(RefusedCall.objects.all())
    assert len(rows) <= 2  # one a minute, and a minute may turn during the flood
    assert {(row.reason, row.api_key) for row in rows} == {("RateLimitError", key)}
    assert sum(row.count for row in rows) == 25


def test_a_spent_budget_is_recorded_as_refused(toolbox, owner):
    team = owner.personal_team
    Budget.objects.create(team=team, monthly_amount=Decimal("1"), hard_cap=True)
    MonthlySpend.objects.create(
        team=team, project="", month=current_month(), total=Decimal("1"), calls=1
    )
    refused = key_client(owner).post("/v1/algo/ada/toolbox", {}, format="json")
    assert_error_shape(refused, 402, "PaymentRequiredError")
    row = RefusedCall.objects.get()
    assert row.reason == "PaymentRequiredError" and "budget" in row.message


def test_an_asynchronous_call_keeps_the_output_its_worker_records(toolbox, owner, async_worker):
    response = key_client(owner).post(
        "/v1/algo/ada/toolbox?output=void&keep_io=true", {"text": "later"}, format="json"
    )
    assert response.status_code == 202
    request_id = response.json()["request_id"]
    assert KeptCallBody.objects.get(pk=request_id).input_text == '{"text": "later"}'
    assert _wait_final(request_id).status == "succeeded"
    body = KeptCallBody.objects.get(pk=request_id)
    assert body.output_kept and body.output_text == '{"echo": {"text": "later"}}'
