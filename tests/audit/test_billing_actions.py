"""Budgets and prices in the audit trail, through the billing API."""

from __future__ import annotations

import pytest

from marketplace.accounts.models import Role
from marketplace.audit.models import AuditEvent
from tests.audit.conftest import CLIENT_IP, key_api_client, session_api_client, the_event
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/services/T000/B000/very-secret-path"


@pytest.fixture
def acme():
    team = TeamFactory(slug="acme")
    ada = UserFactory(username="ada")
    MembershipFactory(team=team, user=ada, role=Role.OWNER)
    return team, ada


def test_budget_created_then_changed(acme):
    team, ada = acme
    client, acting_key = key_api_client(ada)
    first = client.put(
        "/v1/teams/acme/budget",
        {"monthly_amount": "250.00", "thresholds": [50, 100], "webhook_url": HOOK},
        format="json",
    )
    assert first.status_code == 201, first.content
    created = the_event("budget.changed")
    assert (created.actor, created.via, created.key_prefix) == (ada, "key", acting_key.prefix)
    assert created.ip == CLIENT_IP and created.team == team
    assert created.target_type == "budget" and created.before is None
    assert created.after == {
        "project": "",
        "monthly_amount": "250.000000",
        "thresholds": [50, 100],
        "hard_cap": False,
        "webhook_host": "hooks.example.com",
    }
    assert "very-secret-path" not in str(AuditEvent.objects.filter(pk=created.pk).values()[0])

    # The same figures again change nothing, and nothing is recorded.
    client.put(
        "/v1/teams/acme/budget",
        {"monthly_amount": "250", "thresholds": [50, 100], "webhook_url": HOOK},
        format="json",
    )
    assert AuditEvent.objects.filter(action="budget.changed").count() == 1

    changed = session_api_client(ada).put(
        "/v1/teams/acme/budget",
        {"monthly_amount": "400", "thresholds": [50, 100], "hard_cap": True, "webhook_url": HOOK},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    event = AuditEvent.objects.filter(action="budget.changed").order_by("-at").first()
    assert event.via == "session" and event.key_prefix == ""
    assert event.before["monthly_amount"] == "250.000000" and event.before["hard_cap"] is False
    assert event.after["monthly_amount"] == "400.000000" and event.after["hard_cap"] is True


def test_budget_deleted(acme):
    team, ada = acme
    client, acting_key = key_api_client(ada)
    client.put("/v1/teams/acme/budgets/search", {"monthly_amount": "10"}, format="json")
    response = client.delete("/v1/teams/acme/budgets/search")
    assert response.status_code == 204, response.content
    event = the_event("budget.deleted")
    assert (event.actor, event.via, event.key_prefix) == (ada, "key", acting_key.prefix)
    assert event.team == team and event.before["project"] == "search"
    assert event.before["monthly_amount"] == "10.000000" and event.after is None


def test_price_created_by_a_platform_admin(db):
    root = UserFactory(username="root", is_staff=True)
    client = session_api_client(root)
    first = client.post(
        "/v1/prices", {"hardware_class": "gpu-a", "price_per_second": "0.002"}, format="json"
    )
    assert first.status_code == 201, first.content
    event = the_event("price.created")
    assert (event.actor, event.via, event.ip) == (root, "session", CLIENT_IP)
    assert event.team is None  # platform-wide: only the platform trail shows it
    assert event.target_type == "price" and event.before is None
    assert event.after["hardware_class"] == "gpu-a"
    assert event.after["price_per_second"] == "0.002000000"

    client.post(
        "/v1/prices",
        {
            "hardware_class": "gpu-a",
            "price_per_second": "0.003",
            "effective_from": "2099-01-01T00:00:00Z",
        },
        format="json",
    )
    later = AuditEvent.objects.filter(action="price.created").order_by("-at").first()
    assert later.before == {"price_per_second": "0.002000000"}
    assert later.after["effective_from"].startswith("2099-01-01T00:00:00")
