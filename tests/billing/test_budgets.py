"""Budgets, driven by real calls through the gateway that cost money: each threshold mails
the team's owners and admins and posts one signed webhook, once a month; a hard cap refuses
calls with 402 (recorded as rejected) until the budget is raised; a project's budget caps
only that project. Plus who may read and change budgets, by API and on the page."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.budgets import notifications, services, tasks
from billing.budgets.notifications import NotificationNotSent
from billing.budgets.selectors import current_month
from billing.models import Budget, BudgetAlert, ComputePrice, MonthlySpend, UsageRecord
from marketplace.accounts import services as account_services
from marketplace.accounts.selectors import team_signing_secret
from marketplace.core.errors import AuthorizationError, InputError
from marketplace.core.webhooks import sign
from tests.conftest import assert_error_shape
from tests.factories import UserFactory, make_key
from tests.receivers import allow_outbound, wait_for, webhook_receiver

ENDPOINT = "/v1/algo/ada/toolbox/1.0.0"
BUDGET = "/v1/teams/acme/budget"
BUDGETS = "/v1/teams/acme/budgets"
PAGE = "/teams/acme/budgets/"


@pytest.fixture
def one_credit_calls(db, settings):
    """Every billed call costs exactly one credit, however long it runs: it is billed 1000
    seconds (the increment and the minimum) at 0.001 credits a second."""
    settings.BILLING_SECONDS_INCREMENT = Decimal(1000)
    settings.BILLING_MINIMUM_SECONDS = Decimal(1000)
    return ComputePrice.objects.create(
        hardware_class="cpu",
        price_per_second=Decimal("0.001"),
        effective_from=timezone.now() - timedelta(days=1),
    )


@pytest.fixture
def acme(db):
    """A team with one person in each role; owners and admins are the ones alerted."""
    boss = UserFactory(username="boss")
    team = account_services.team_create(actor=boss, slug="acme", name="Acme")
    people = {"boss": boss}
    for role in ("admin", "member", "billing"):
        person = UserFactory(username=f"acme-{role}")
        account_services.membership_add(actor=boss, team=team, username=person.username, role=role)
        people[role] = person
    return SimpleNamespace(team=team, **people)


def caller(acme, **kwargs) -> APIClient:
    """A client with an acme team key that may call any model: its calls are acme's."""
    client = APIClient()
    secret = make_key(acme.boss, team=acme.team, scopes=["algo://*"], **kwargs)[1]
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client


def call(client, project: str | None = None):
    headers = {"HTTP_X_PROJECT": project} if project else {}
    return client.post(ENDPOINT, {"text": "hi"}, format="json", **headers)


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def with_key(user, **kwargs) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(user, **kwargs)[1]}")
    return client


def wait_for_mail(count: int, seconds: float = 30) -> list:
    deadline = time.monotonic() + seconds
    while len(mail.outbox) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return mail.outbox


def previous_month():
    return (current_month() - timedelta(days=1)).replace(day=1)


def spend(team, total, *, project: str = "", month=None) -> None:
    MonthlySpend.objects.update_or_create(
        team=team,
        project=project,
        month=month or current_month(),
        defaults={"total": Decimal(total), "calls": 1},
    )


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


# -- alerts ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_each_threshold_notifies_once_by_mail_and_by_signed_webhook(
    toolbox, acme, one_credit_calls, async_worker, mailoutbox, settings
):
    with webhook_receiver() as (url, received):
        allow_outbound(settings, url)
        budget, created = services.budget_set(
            actor=acme.boss,
            team=acme.team,
            monthly_amount="5",
            thresholds=[40, 80, 100],
            webhook_url=url,
        )
        assert created
        # Last month's alerts were all sent; they do not stand for this month's.
        for threshold in budget.thresholds:
            BudgetAlert.objects.create(
                budget=budget,
                month=previous_month(),
                threshold=threshold,
                spent=Decimal(5),
                notified_at=timezone.now() - timedelta(days=20),
            )
        client = caller(acme)
        for _ in range(7):  # 40% at the 2nd call, 80% at the 4th, 100% at the 5th, then over
            assert call(client).status_code == 200
        assert len(wait_for(received, 3)) == 3
        assert len(wait_for_mail(3)) == 3
        # Nothing is left to send: the sweep queues nothing, a duplicate task sends nothing.
        assert tasks.budget_alerts_sweep() == 0
        assert not notifications.budget_threshold_notify(
            budget_id=budget.pk, month=current_month(), threshold=80
        )
        time.sleep(1)
        assert len(received) == 3 and len(mailoutbox) == 3

    assert MonthlySpend.objects.get(team=acme.team, project="").total == 7
    alerts = BudgetAlert.objects.filter(budget=budget, month=current_month())
    assert sorted(a.threshold for a in alerts) == [40, 80, 100]
    assert all(a.notified_at is not None for a in alerts)

    subjects = sorted(message.subject for message in mailoutbox)
    assert [s.split("]")[1].split("%")[0].strip() for s in subjects] == ["100", "40", "80"]
    for message in mailoutbox:
        assert sorted(message.to) == sorted([acme.boss.email, acme.admin.email])
        assert "acme" in message.subject and "the whole team" in message.subject

    secret = team_signing_secret(acme.team.pk)
    deliveries = set()
    thresholds = []
    for headers, body in received:
        headers = {name.lower(): value for name, value in headers.items()}
        assert headers["x-marketplace-signature"] == sign(secret, body)
        assert headers["x-marketplace-event"] == "budget.threshold"
        deliveries.add(headers["x-marketplace-delivery"])
        payload = json.loads(body)
        assert payload["team"] == "acme" and payload["project"] == ""
        assert payload["month"] == current_month().isoformat()
        assert Decimal(payload["spent"]) >= Decimal(5) * payload["threshold"] / 100
        thresholds.append(payload["threshold"])
    assert sorted(thresholds) == [40, 80, 100] and len(deliveries) == 3


def test_a_threshold_notifies_once_a_month_and_again_the_next(acme, mailoutbox):
    budget, _ = services.budget_set(
        actor=acme.boss, team=acme.team, monthly_amount="10", thresholds=[50]
    )
    last, this = previous_month(), current_month()
    spend(acme.team, 6, month=last)
    spend(acme.team, 7, month=this)

    def notify(month):
        return notifications.budget_threshold_notify(budget_id=budget.pk, month=month, threshold=50)

    assert notify(last) and not notify(last)
    assert len(mailoutbox) == 1 and last.strftime("%B %Y") in mailoutbox[0].subject
    assert notify(this) and not notify(this)
    assert len(mailoutbox) == 2 and this.strftime("%B %Y") in mailoutbox[1].subject
    assert BudgetAlert.objects.filter(budget=budget).count() == 2


def test_a_failed_webhook_is_retried_without_mailing_twice(acme, mailoutbox, settings):
    closed = closed_port_url()
    allow_outbound(settings, closed)
    budget, _ = services.budget_set(
        actor=acme.boss,
        team=acme.team,
        monthly_amount="10",
        thresholds=[50],
        webhook_url=closed,
    )
    spend(acme.team, 6)
    args = {"budget_id": budget.pk, "month": current_month(), "threshold": 50}
    with pytest.raises(NotificationNotSent):
        notifications.budget_threshold_notify(**args)
    alert = BudgetAlert.objects.get(budget=budget)
    assert alert.notified_at is None and len(mailoutbox) == 1
    assert tasks.budget_alerts_sweep() == 1  # not delivered yet: queued again
    with webhook_receiver() as (url, received):
        allow_outbound(settings, url)
        Budget.objects.filter(pk=budget.pk).update(webhook_url=url)
        assert notifications.budget_threshold_notify(**args)
        assert not notifications.budget_threshold_notify(**args)
        assert len(received) == 1
    assert len(mailoutbox) == 1
    alert.refresh_from_db()
    assert alert.notified_at is not None
    assert tasks.budget_alerts_sweep() == 0


def test_an_alert_no_longer_due_is_not_sent(acme, mailoutbox):
    budget, _ = services.budget_set(
        actor=acme.boss, team=acme.team, monthly_amount="10", thresholds=[50]
    )
    spend(acme.team, 6)
    # The 50% alert was queued, then an admin raised the budget before it ran.
    services.budget_set(actor=acme.admin, team=acme.team, monthly_amount="20", thresholds=[50])
    assert not notifications.budget_threshold_notify(
        budget_id=budget.pk, month=current_month(), threshold=50
    )
    assert not BudgetAlert.objects.exists() and mailoutbox == []


@pytest.mark.slow
def test_lowering_a_budget_below_the_spend_sends_the_alerts_now_passed(
    toolbox, acme, one_credit_calls, async_worker, mailoutbox
):
    services.budget_set(
        actor=acme.boss, team=acme.team, monthly_amount="100", thresholds=[25, 50, 100]
    )
    client = caller(acme)
    for _ in range(3):
        assert call(client).status_code == 200
    time.sleep(0.5)
    assert mailoutbox == []
    budget, created = services.budget_set(
        actor=acme.admin, team=acme.team, monthly_amount="6", thresholds=[25, 50, 100]
    )
    assert not created
    assert len(wait_for_mail(2)) == 2
    assert sorted(m.subject.split("] ")[1].split("%")[0] for m in mailoutbox) == ["25", "50"]
    deadline = time.monotonic() + 10
    while BudgetAlert.objects.filter(notified_at__isnull=True).exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Saving again (now with a hard cap) finds nothing new to say.
    services.budget_set(
        actor=acme.admin,
        team=acme.team,
        monthly_amount="6",
        thresholds=[25, 50, 100],
        hard_cap=True,
    )
    time.sleep(1)
    assert len(mailoutbox) == 2
    assert BudgetAlert.objects.filter(budget=budget).count() == 2


# -- hard caps ---------------------------------------------------------------------------------


def test_the_hard_cap_refuses_with_402_records_it_and_lifts_when_raised(
    toolbox, acme, one_credit_calls
):
    services.budget_set(
        actor=acme.boss, team=acme.team, monthly_amount="2", thresholds=[], hard_cap=True
    )
    client = caller(acme)
    assert call(client).status_code == 200
    assert call(client).status_code == 200
    refused = call(client)
    error = assert_error_shape(refused, 402, "PaymentRequiredError")
    assert "budget of 2" in error["message"] and "acme" in error["message"]
    record = UsageRecord.objects.get(request_id=refused["X-Request-ID"])
    assert record.status == "rejected" and record.error_type == "PaymentRequiredError"
    assert not record.billed and record.total == 0
    spent = MonthlySpend.objects.get(team=acme.team, project="")
    assert spent.total == 2 and spent.calls == 3

    raised = session(acme.boss).put(
        BUDGET, {"monthly_amount": "3", "thresholds": [], "hard_cap": True}, format="json"
    )
    assert raised.status_code == 200, raised.content
    assert raised.json()["blocked"] is False
    assert call(client).status_code == 200
    assert_error_shape(call(client), 402, "PaymentRequiredError")
    blocked = session(acme.billing).get(BUDGET).json()
    assert blocked["blocked"] is True and blocked["percent_used"] == 100.0


def test_a_project_budget_caps_only_that_projects_calls(toolbox, acme, one_credit_calls):
    services.budget_set(
        actor=acme.boss,
        team=acme.team,
        project="batch",
        monthly_amount="1",
        thresholds=[],
        hard_cap=True,
    )
    services.budget_set(
        actor=acme.boss, team=acme.team, monthly_amount="100", thresholds=[], hard_cap=True
    )
    client = caller(acme)
    assert call(client, "batch").status_code == 200
    error = assert_error_shape(call(client, "batch"), 402, "PaymentRequiredError")
    assert "project batch" in error["message"]
    assert call(client, "web").status_code == 200
    assert call(client).status_code == 200
    # A key labelled with the project is that project's, header or not.
    assert_error_shape(call(caller(acme, project="batch")), 402, "PaymentRequiredError")
    records = UsageRecord.objects.filter(team=acme.team)
    assert sorted(records.values_list("project", "status")) == [
        ("", "succeeded"),
        ("batch", "rejected"),
        ("batch", "rejected"),
        ("batch", "succeeded"),
        ("web", "succeeded"),
    ]


# -- services ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"monthly_amount": "0"}, "monthly_amount"),
        ({"monthly_amount": "-3"}, "monthly_amount"),
        ({"monthly_amount": "ten"}, "monthly_amount"),
        ({"monthly_amount": "NaN"}, "monthly_amount"),
        ({"monthly_amount": "1.0000001"}, "monthly_amount"),
        ({"monthly_amount": "1e20"}, "monthly_amount"),
        ({"thresholds": [0]}, "thresholds"),
        ({"thresholds": ["half"]}, "thresholds"),
        ({"thresholds": list(range(1, 13))}, "thresholds"),
        ({"webhook_url": "ftp://example.com/hook"}, "webhook_url"),
        ({"webhook_url": "not a url"}, "webhook_url"),
        ({"project": "p" * 65}, "project"),
    ],
)
def test_a_budget_is_validated(acme, changes, field):
    data = {"monthly_amount": "10", **changes}
    with pytest.raises(InputError) as refused:
        services.budget_set(actor=acme.boss, team=acme.team, **data)
    assert refused.value.message.startswith(f"{field}:")
    assert not Budget.objects.exists()


def test_only_owners_and_admins_change_budgets(acme):
    for person in (acme.member, acme.billing, UserFactory()):
        with pytest.raises(AuthorizationError):
            services.budget_set(actor=person, team=acme.team, monthly_amount="10")
    budget, _ = services.budget_set(actor=acme.admin, team=acme.team, monthly_amount="10")
    with pytest.raises(AuthorizationError):
        services.budget_delete(actor=acme.billing, budget=budget)
    services.budget_delete(actor=acme.boss, budget=budget)
    assert not Budget.objects.exists()


# -- API ---------------------------------------------------------------------------------------


def test_budgets_do_not_exist_for_non_members(acme):
    outsider = session(UserFactory())
    services.budget_set(actor=acme.boss, team=acme.team, monthly_amount="10")
    assert_error_shape(outsider.get(BUDGETS), 404, "NotFoundError")
    assert_error_shape(outsider.get(BUDGET), 404, "NotFoundError")
    assert_error_shape(outsider.put(BUDGET, {"monthly_amount": "99"}), 404)
    assert_error_shape(outsider.delete(BUDGET), 404)
    assert_error_shape(APIClient().get(BUDGETS), 401, "AuthenticationError")
    assert Budget.objects.get().monthly_amount == 10


def test_billing_members_read_budgets_and_only_owners_and_admins_change_them(acme):
    assert_error_shape(session(acme.member).get(BUDGETS), 403, "AuthorizationError")
    biller = session(acme.billing)
    assert biller.get(BUDGETS).json()["results"] == []
    assert_error_shape(biller.get(BUDGET), 404, "NotFoundError")
    assert_error_shape(biller.put(BUDGET, {"monthly_amount": "10"}), 403, "AuthorizationError")

    admin = session(acme.admin)
    created = admin.put(BUDGET, {"monthly_amount": "10"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["thresholds"] == [50, 80, 100] and created.json()["hard_cap"] is False
    changed = admin.put(
        BUDGET,
        {"monthly_amount": "12.5", "thresholds": [90, 75], "hard_cap": True},
        format="json",
    )
    assert changed.status_code == 200
    assert changed.json()["monthly_amount"] == "12.500000"
    assert changed.json()["thresholds"] == [75, 90]
    project = admin.put(f"{BUDGETS}/batch", {"monthly_amount": "4"}, format="json")
    assert project.status_code == 201 and project.json()["scope"] == "project batch"
    listed = biller.get(BUDGETS).json()["results"]
    assert [b["project"] for b in listed] == ["", "batch"]

    assert admin.delete(f"{BUDGETS}/batch").status_code == 204
    assert_error_shape(biller.get(f"{BUDGETS}/batch"), 404, "NotFoundError")
    assert_error_shape(admin.delete(f"{BUDGETS}/batch"), 404, "NotFoundError")
    bad = assert_error_shape(admin.put(BUDGET, {"monthly_amount": "0"}), 400, "InputError")
    assert "monthly_amount" in bad["message"]


def test_keys_read_budgets_with_billing_read_and_never_change_them(acme):
    services.budget_set(actor=acme.boss, team=acme.team, monthly_amount="10")
    caller_only = with_key(acme.boss, team=acme.team, scopes=["algo://*"])
    error = assert_error_shape(caller_only.get(BUDGETS), 403, "AuthorizationError")
    assert "billing:read" in error["message"]
    reader = with_key(acme.boss, team=acme.team, scopes=["billing:read"])
    assert reader.get(BUDGET).json()["monthly_amount"] == "10.000000"
    error = assert_error_shape(
        reader.put(BUDGET, {"monthly_amount": "1000"}, format="json"), 403, "AuthorizationError"
    )
    assert "browser session or a personal full-access key" in error["message"]
    assert_error_shape(reader.delete(BUDGET), 403, "AuthorizationError")
    # A team key acts for its own team only.
    other = account_services.team_create(actor=acme.boss, slug="other", name="Other")
    elsewhere = with_key(acme.boss, team=other, scopes=["billing:read"])
    assert_error_shape(elsewhere.get(BUDGETS), 403, "AuthorizationError")
    # A billing member's own full-access key reads, and still cannot write.
    billing_key = with_key(acme.billing)
    assert billing_key.get(BUDGETS).status_code == 200
    assert_error_shape(billing_key.put(BUDGET, {"monthly_amount": "1000"}), 403)
    # An owner's personal full-access key may change it.
    owner_key = with_key(acme.boss)
    assert owner_key.put(BUDGET, {"monthly_amount": "20"}, format="json").status_code == 200
    assert Budget.objects.get().monthly_amount == 20


def test_the_list_shows_month_to_date_spend_percent_used_and_alerts(acme):
    team_budget, _ = services.budget_set(
        actor=acme.boss, team=acme.team, monthly_amount="10", thresholds=[50, 80]
    )
    services.budget_set(actor=acme.boss, team=acme.team, project="batch", monthly_amount="4")
    spend(acme.team, 6)
    spend(acme.team, 3, project="batch")
    spend(acme.team, 100, month=previous_month())
    BudgetAlert.objects.create(
        budget=team_budget,
        month=current_month(),
        threshold=50,
        spent=Decimal(5),
        notified_at=timezone.now(),
    )
    BudgetAlert.objects.create(
        budget=team_budget, month=previous_month(), threshold=80, spent=Decimal(90)
    )
    body = session(acme.billing).get(BUDGETS).json()
    assert body["month"] == current_month().isoformat()
    team, batch = body["results"]
    assert team["spent"] == "6.000000" and team["remaining"] == "4.000000"
    assert team["percent_used"] == 60.0 and team["thresholds_reached"] == [50]
    assert [a["threshold"] for a in team["alerts"]] == [50]
    assert team["alerts"][0]["notified_at"] is not None
    assert team["blocked"] is False
    assert batch["project"] == "batch" and batch["percent_used"] == 75.0
    assert batch["thresholds_reached"] == [50] and batch["alerts"] == []


# -- page --------------------------------------------------------------------------------------


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_budgets_page_shows_spend_against_each_budget(acme):
    services.budget_set(
        actor=acme.boss, team=acme.team, monthly_amount="10", thresholds=[50], hard_cap=True
    )
    spend(acme.team, 6)
    assert browser(UserFactory()).get(PAGE).status_code == 404
    assert browser(acme.member).get(PAGE).status_code == 403
    page = browser(acme.billing).get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "6.00</strong> of 10.00 credits" in html and "60.0%" in html
    assert 'style="width: 60.0%"' in html and "hard cap" in html
    assert "Only owners and admins of acme can change its budgets" in html
    assert 'name="action" value="save"' not in html
    refused = browser(acme.billing).post(
        PAGE, {"action": "save", "monthly_amount": "1000"}, follow=True
    )
    assert "Only owners and admins of acme can change its budgets" in refused.content.decode()
    assert Budget.objects.get().monthly_amount == 10


def test_owners_and_admins_set_change_and_remove_budgets_on_the_page(acme):
    client = Client(enforce_csrf_checks=True)
    client.force_login(acme.admin)
    form = {
        "action": "save",
        "project": "batch",
        "monthly_amount": "25",
        "thresholds": "50, 90",
        "hard_cap": "on",
        "webhook_url": "",
    }
    assert client.post(PAGE, form).status_code == 403  # no CSRF token
    assert not Budget.objects.exists()
    page = client.get(PAGE)
    assert 'name="action" value="save"' in page.content.decode()
    token = page.cookies["csrftoken"].value
    saved = client.post(PAGE, {**form, "csrfmiddlewaretoken": token})
    assert saved.status_code == 302
    budget = Budget.objects.get()
    assert (budget.project, budget.monthly_amount, budget.thresholds, budget.hard_cap) == (
        "batch",
        25,
        [50, 90],
        True,
    )

    editing = client.get(PAGE, {"edit": "batch"}).content.decode()
    assert 'value="50, 90"' in editing and 'value="25"' in editing

    wrong = client.post(
        PAGE,
        {**form, "monthly_amount": "0", "webhook_url": "ftp://x", "csrfmiddlewaretoken": token},
    )
    assert wrong.status_code == 400
    assert "must be more than zero" in wrong.content.decode()
    wrong = client.post(PAGE, {**form, "thresholds": "50, 2000", "csrfmiddlewaretoken": token})
    assert wrong.status_code == 400 and "between 1 and 1000" in wrong.content.decode()
    assert Budget.objects.get().monthly_amount == 25

    removed = client.post(
        PAGE, {"action": "delete", "project": "batch", "csrfmiddlewaretoken": token}, follow=True
    )
    assert "Budget for project batch removed." in removed.content.decode()
    assert not Budget.objects.exists()
