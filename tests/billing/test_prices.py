"""Compute prices: platform admins schedule them from now on, never in the past, never over
an existing one; a scheduled price applies to calls from its date and never before. The
same rules hold in the service, the API, the pricing page and Django's admin."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.budgets import services
from billing.metering import price_at
from billing.models import ComputePrice, UsageRecord
from marketplace.core.errors import AuthorizationError, ConflictError, InputError
from tests.catalog.factories import ModelFactory
from tests.conftest import assert_error_shape
from tests.factories import UserFactory, make_key
from tests.gateway.conftest import key_client

ENDPOINT = "/v1/algo/ada/toolbox/1.0.0"
PRICES = "/v1/prices"
ADMIN = "/admin/billing/computeprice/"


@pytest.fixture
def staff(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def old_price(db):
    """A price set yesterday (history, so written directly: the service refuses the past)."""
    return ComputePrice.objects.create(
        hardware_class="cpu",
        price_per_second=Decimal("0.001"),
        effective_from=timezone.now() - timedelta(days=1),
    )


def logged_in(user, client_class=APIClient):
    client = client_class()
    client.force_login(user)
    return client


# -- service -----------------------------------------------------------------------------------


def test_a_price_never_starts_in_the_past(staff):
    with pytest.raises(InputError) as refused:
        services.price_set(
            actor=staff,
            hardware_class="cpu",
            price_per_second="0.002",
            effective_from=timezone.now() - timedelta(minutes=1),
        )
    assert refused.value.message.startswith("effective_from:")
    assert "never to calls already made" in refused.value.message
    assert not ComputePrice.objects.exists()
    # "Just now" (a request's way there) means now, never a moment before it.
    before = timezone.now()
    price = services.price_set(
        actor=staff,
        hardware_class="cpu",
        price_per_second="0.002",
        effective_from=before - timedelta(seconds=2),
    )
    assert price.effective_from >= before and price.created_by == staff
    default = services.price_set(actor=staff, hardware_class="gpu", price_per_second=1)
    assert default.effective_from >= before


def test_only_platform_admins_set_prices(db):
    for actor in (UserFactory(), UserFactory(is_superuser=False, is_staff=False)):
        with pytest.raises(AuthorizationError):
            services.price_set(actor=actor, hardware_class="cpu", price_per_second="0")
    assert not ComputePrice.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price_per_second": "-0.001"}, "price_per_second"),
        ({"price_per_second": "cheap"}, "price_per_second"),
        ({"price_per_second": "0.0000000001"}, "price_per_second"),
        ({"price_per_second": "Infinity"}, "price_per_second"),
        ({"price_per_second": "100000000000"}, "price_per_second"),
        ({"hardware_class": "GPU!"}, "hardware_class"),
        ({"hardware_class": ""}, "hardware_class"),
        ({"effective_from": timezone.now().replace(tzinfo=None)}, "effective_from"),
        ({"note": "n" * 201}, "note"),
    ],
)
def test_a_price_is_validated(staff, changes, field):
    data = {"hardware_class": "cpu", "price_per_second": "0.001", **changes}
    with pytest.raises(InputError) as refused:
        services.price_set(actor=staff, **data)
    assert refused.value.message.startswith(f"{field}:")
    assert refused.value.fields == {field: refused.value.fields[field]}


def test_two_prices_of_a_class_never_start_together(staff):
    start = timezone.now() + timedelta(days=3)
    services.price_set(
        actor=staff, hardware_class="cpu", price_per_second="0.1", effective_from=start
    )
    with pytest.raises(ConflictError):
        services.price_set(
            actor=staff, hardware_class="cpu", price_per_second="0.2", effective_from=start
        )
    services.price_set(
        actor=staff, hardware_class="gpu", price_per_second="0.2", effective_from=start
    )
    assert ComputePrice.objects.count() == 2


def test_a_scheduled_price_applies_from_its_date_and_never_before(toolbox, owner, old_price, staff):
    start = timezone.now() + timedelta(seconds=3)
    scheduled = services.price_set(
        actor=staff,
        hardware_class="cpu",
        price_per_second="0.002",
        effective_from=start,
        note="new hardware",
    )
    assert price_at("cpu", start - timedelta(microseconds=1)) == Decimal("0.001")
    assert price_at("cpu", start) == Decimal("0.002")
    client = key_client(owner)
    before = client.post(ENDPOINT, {"text": "now"}, format="json")
    assert before.status_code == 200
    time.sleep(max((start - timezone.now()).total_seconds(), 0) + 0.1)
    after = client.post(ENDPOINT, {"text": "later"}, format="json")
    early = UsageRecord.objects.get(request_id=before.json()["request_id"])
    late = UsageRecord.objects.get(request_id=after.json()["request_id"])
    assert early.started_at < start <= late.started_at
    assert early.price_per_second == Decimal("0.001")
    assert late.price_per_second == scheduled.price_per_second == Decimal("0.002")
    assert late.compute_cost == (late.billed_seconds * Decimal("0.002")).quantize(
        Decimal("0.000001")
    )


# -- API ---------------------------------------------------------------------------------------


def test_anyone_reads_the_prices_in_force_and_scheduled(old_price, staff):
    ModelFactory(hardware_class="gpu")
    later = services.price_set(
        actor=staff,
        hardware_class="cpu",
        price_per_second="0.0015",
        effective_from=timezone.now() + timedelta(days=30),
    )
    body = APIClient().get(PRICES).json()
    by_class = {row["hardware_class"]: row for row in body["results"]}
    assert set(by_class) == {"cpu", "gpu"}
    assert by_class["cpu"]["current"]["price_per_second"] == "0.001000000"
    assert [p["price_per_second"] for p in by_class["cpu"]["scheduled"]] == ["0.001500000"]
    assert by_class["cpu"]["scheduled"][0]["effective_from"].startswith(
        later.effective_from.strftime("%Y-%m-%dT%H:%M")
    )
    assert by_class["gpu"] == {"hardware_class": "gpu", "current": None, "scheduled": []}


def test_only_platform_admins_post_prices(db, staff):
    body = {"hardware_class": "cpu", "price_per_second": "0.002"}
    assert_error_shape(APIClient().post(PRICES, body), 401, "AuthenticationError")
    assert_error_shape(
        logged_in(UserFactory()).post(PRICES, body, format="json"), 403, "AuthorizationError"
    )
    admin = logged_in(staff)
    created = admin.post(PRICES, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["price_per_second"] == "0.002000000"
    assert ComputePrice.objects.get().created_by == staff

    start = (timezone.now() + timedelta(days=1)).isoformat()
    first = admin.post(PRICES, {**body, "effective_from": start}, format="json")
    assert first.status_code == 201
    assert_error_shape(
        admin.post(PRICES, {**body, "effective_from": start}, format="json"), 409, "ConflictError"
    )
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    error = assert_error_shape(
        admin.post(PRICES, {**body, "effective_from": past}, format="json"), 400, "InputError"
    )
    assert "in the past" in error["message"] and error["fields"] == {"effective_from": ["past"]}
    assert_error_shape(
        admin.post(PRICES, {**body, "price_per_second": "-1"}, format="json"), 400, "InputError"
    )
    # A staff member's narrowly scoped key cannot reprice the platform.
    scoped = APIClient()
    scoped.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(staff, scopes=['billing:read'])[1]}")
    assert_error_shape(scoped.post(PRICES, body, format="json"), 403, "AuthorizationError")
    assert ComputePrice.objects.count() == 2


# -- pages -------------------------------------------------------------------------------------


def test_the_pricing_page_lists_prices_and_only_admins_schedule_them(old_price, staff):
    page = Client().get("/pricing/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "0.001" in html and "Schedule a price" not in html
    assert Client().post("/pricing/", {"hardware_class": "cpu"}).status_code == 403
    member = logged_in(UserFactory(), Client)
    refused = member.post("/pricing/", {"hardware_class": "cpu", "price_per_second": "9"})
    assert refused.status_code == 403

    admin = Client(enforce_csrf_checks=True)
    admin.force_login(staff)
    page = admin.get("/pricing/")
    assert "Schedule a price" in page.content.decode()
    token = page.cookies["csrftoken"].value
    form = {"hardware_class": "gpu", "price_per_second": "0.25", "note": "A100"}
    assert admin.post("/pricing/", form).status_code == 403  # no CSRF token
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    wrong = admin.post("/pricing/", {**form, "effective_from": past, "csrfmiddlewaretoken": token})
    assert wrong.status_code == 400
    assert "is in the past" in wrong.content.decode()
    done = admin.post("/pricing/", {**form, "csrfmiddlewaretoken": token}, follow=True)
    assert "gpu: 0.25 credits a second from" in done.content.decode()
    assert ComputePrice.objects.get(hardware_class="gpu").note == "A100"


def test_the_admin_adds_prices_by_the_rules_and_never_changes_one(old_price, staff):
    admin = logged_in(staff, Client)
    assert admin.get(ADMIN).status_code == 200
    future = timezone.now() + timedelta(days=7)
    added = admin.post(
        f"{ADMIN}add/",
        {
            "hardware_class": "cpu",
            "price_per_second": "0.003",
            "effective_from": future.strftime("%Y-%m-%d %H:%M:%S"),
            "note": "from the admin",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    price = ComputePrice.objects.get(note="from the admin")
    assert price.created_by == staff and price.price_per_second == Decimal("0.003")

    past = admin.post(
        f"{ADMIN}add/",
        {
            "hardware_class": "cpu",
            "price_per_second": "0.004",
            "effective_from": (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    assert past.status_code == 200 and "is in the past" in past.content.decode()
    assert ComputePrice.objects.count() == 2

    change = f"{ADMIN}{old_price.pk}/change/"
    view = admin.get(change)
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
    admin.post(change, {"hardware_class": "cpu", "price_per_second": "9", "note": "x"})
    assert admin.get(f"{ADMIN}{old_price.pk}/delete/").status_code == 403
    old_price.refresh_from_db()
    assert old_price.price_per_second == Decimal("0.001") and ComputePrice.objects.count() == 2
