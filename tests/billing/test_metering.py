"""Every call through the real gateway leaves exactly one usage record, priced by the rules:
effective-dated compute prices, the version's royalty, failed calls not billed by default,
billed seconds rounded up."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.metering import billed_seconds, charge
from billing.models import ComputePrice, MonthlySpend, UsageRecord
from execution.backends import ExecutionResult
from gateway import lifecycle
from gateway.models import Invocation
from tests.gateway.conftest import key_client

ENDPOINT = "/v1/algo/ada/toolbox/1.0.0"


@pytest.fixture
def price(db):
    return ComputePrice.objects.create(
        hardware_class="cpu",
        price_per_second=Decimal("0.002"),
        effective_from=timezone.now() - timedelta(days=1),
    )


def test_a_successful_call_has_one_priced_record(toolbox, owner, price, settings):
    settings.BILLING_SECONDS_INCREMENT = Decimal("0.1")
    client = key_client(owner, project="web-shop")
    answer = client.post(ENDPOINT, {"text": "hi"}, format="json")
    assert answer.status_code == 200, answer.content
    request_id = answer.json()["request_id"]
    record = UsageRecord.objects.get(request_id=request_id)
    invocation = Invocation.objects.get(pk=request_id)
    assert record.status == "succeeded" and record.billed
    assert record.team_id == invocation.caller_team_id and record.user == owner
    assert record.project == "web-shop" and record.key_prefix == invocation.api_key.prefix
    assert record.model_name == "ada/toolbox" and record.version_label == "1.0.0"
    assert record.started_at == invocation.started_at and record.ended_at == invocation.finished_at
    assert record.bytes_in == invocation.input_bytes and record.bytes_out > 0
    assert record.billed_seconds >= record.duration_seconds
    assert record.billed_seconds % Decimal("0.1") == 0
    assert record.price_per_second == Decimal("0.002")
    assert record.compute_cost == (record.billed_seconds * Decimal("0.002")).quantize(
        Decimal("0.000001")
    )
    assert record.total == record.compute_cost + record.royalty
    spend = MonthlySpend.objects.get(team_id=record.team_id, project="")
    assert spend.total == record.total and spend.calls == 1
    assert MonthlySpend.objects.get(team_id=record.team_id, project="web-shop").calls == 1


def test_the_x_project_header_overrides_the_keys_label(toolbox, owner):
    client = key_client(owner, project="web-shop")
    answer = client.post(ENDPOINT, {"text": "hi"}, format="json", HTTP_X_PROJECT="batch")
    assert UsageRecord.objects.get(request_id=answer.json()["request_id"]).project == "batch"


def test_a_model_error_is_recorded_and_not_billed(toolbox, owner, price):
    answer = key_client(owner).post(ENDPOINT, {"fail": "nope"}, format="json")
    assert answer.json()["error"]["message"] == "nope"
    record = UsageRecord.objects.get(request_id=answer.json()["request_id"])
    assert record.status == "failed" and record.error_type == "AlgorithmError"
    assert not record.billed and record.total == 0 and record.billed_seconds == 0


def test_failed_calls_are_billed_when_configured(toolbox, owner, price, settings):
    settings.BILLING_CHARGE_FAILED_CALLS = True
    answer = key_client(owner).post(ENDPOINT, {"fail": "nope"}, format="json")
    record = UsageRecord.objects.get(request_id=answer.json()["request_id"])
    assert record.billed and record.compute_cost > 0


def test_a_timeout_is_recorded(toolbox, owner):
    answer = key_client(owner).post(ENDPOINT + "?timeout=1", {"sleep": 5}, format="json")
    assert answer.status_code == 504
    record = UsageRecord.objects.get(request_id=answer.json()["request_id"])
    assert record.status == "timeout" and not record.billed


def test_a_call_refused_by_the_rate_limit_is_recorded(toolbox, owner, settings):
    settings.RATE_LIMIT_PER_KEY_PER_MINUTE = 1
    client = key_client(owner)
    assert client.post(ENDPOINT, {"text": "a"}, format="json").status_code == 200
    refused = client.post(ENDPOINT, {"text": "b"}, format="json")
    assert refused.status_code == 429
    record = UsageRecord.objects.get(request_id=refused["X-Request-ID"])
    assert record.status == "rejected" and record.error_type == "RateLimitError"
    assert not record.billed and record.total == 0
    assert UsageRecord.objects.count() == 2


def test_finishing_twice_records_once(toolbox, owner):
    answer = key_client(owner).post(ENDPOINT, {"text": "hi"}, format="json")
    invocation = Invocation.objects.get(pk=answer.json()["request_id"])
    invocation.status = "running"  # as a retried task would see a stale copy
    assert not lifecycle.finish(invocation, ExecutionResult("succeeded", result={"x": 1}))
    assert UsageRecord.objects.filter(request_id=invocation.pk).count() == 1


def test_an_abandoned_call_is_reaped_into_one_record(toolbox, owner):
    answer = key_client(owner).post(ENDPOINT, {"text": "hi"}, format="json")
    done = Invocation.objects.get(pk=answer.json()["request_id"])
    # A call whose web process died mid-call: running, no record, long past its timeout.
    lost = Invocation.objects.create(
        id=uuid.uuid4(),
        model=done.model,
        version=done.version,
        build=done.build,
        version_label="1.0.0",
        caller_team=done.caller_team,
        caller_user=owner,
        backend="local",
        timeout_seconds=10,
        input_content_type="json",
        status="running",
        started_at=timezone.now() - timedelta(minutes=10),
    )
    fresh = Invocation.objects.create(
        id=uuid.uuid4(),
        model=done.model,
        version=done.version,
        build=done.build,
        version_label="1.0.0",
        caller_team=done.caller_team,
        backend="local",
        timeout_seconds=10,
        input_content_type="json",
        status="running",
        started_at=timezone.now(),
    )
    assert lifecycle.invocations_reap() == 1
    assert lifecycle.invocations_reap() == 0
    lost.refresh_from_db()
    assert lost.status == "failed" and lost.error["error_type"] == "InterruptedError"
    record = UsageRecord.objects.get(request_id=lost.pk)
    assert record.status == "failed" and not record.billed
    assert not UsageRecord.objects.filter(request_id=fresh.pk).exists()


def test_prices_apply_from_their_date_never_before(db):
    now = timezone.now()
    ComputePrice.objects.create(
        hardware_class="gpu", price_per_second=Decimal("1"), effective_from=now - timedelta(days=2)
    )
    ComputePrice.objects.create(
        hardware_class="gpu", price_per_second=Decimal("3"), effective_from=now
    )

    def cost(started):
        return charge(
            status="succeeded",
            started_at=started,
            ended_at=started + timedelta(seconds=1),
            hardware_class="gpu",
            royalty_per_call=Decimal("0.5"),
        )

    assert cost(now - timedelta(seconds=1)).compute_cost == Decimal("1.000000")
    assert cost(now).compute_cost == Decimal("3.000000")
    assert cost(now - timedelta(days=3)).compute_cost == 0  # before any price
    assert cost(now).total == Decimal("3.5")


@pytest.mark.parametrize(
    ("duration", "increment", "minimum", "billed"),
    [
        ("0.001", "0.1", "0", "0.1"),
        ("0.100", "0.1", "0", "0.1"),
        ("0.101", "0.1", "0", "0.2"),
        ("2.5", "1", "0", "3"),
        ("0.2", "0.001", "1", "1"),
        ("0", "0.1", "0", "0"),
    ],
)
def test_billed_seconds_round_up_to_the_increment(settings, duration, increment, minimum, billed):
    settings.BILLING_SECONDS_INCREMENT = Decimal(increment)
    settings.BILLING_MINIMUM_SECONDS = Decimal(minimum)
    assert billed_seconds(Decimal(duration)) == Decimal(billed)
