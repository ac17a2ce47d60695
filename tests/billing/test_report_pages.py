"""The usage and earnings pages, the billing overview, the team page's link and the model
page's Value card: they render for the right people, show the report's figures formatted,
draw their charts, and never show another team's private data."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from billing.formatting import format_count, format_credits
from billing.models import UsageRecord
from marketplace.accounts.models import Role
from tests.factories import MembershipFactory, UserFactory

from .factories import UsageRecordFactory
from .report_world import END, START, build_world, owner_records, team_records

pytestmark = pytest.mark.django_db

RANGE = {"range": "custom", "start": START.isoformat(), "end": END.isoformat()}


@pytest.fixture
def world():
    return build_world(calls=90)


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def stat(html: str, name: str) -> str:
    match = re.search(
        rf'data-stat="{name}"><div class="stat-label">[^<]*</div>'
        r'<div class="stat-value">([^<]*)</div>',
        html,
    )
    assert match, name
    return unescape(match.group(1))


def test_the_usage_page_shows_the_reports_figures_and_charts(world):
    response = browser(world.billing).get("/teams/acme/usage/", RANGE)
    assert response.status_code == 200
    html = response.content.decode()
    records = team_records(world.acme, START, END)
    assert stat(html, "calls") == format_count(len(records))
    assert stat(html, "billed_calls") == format_count(sum(r.billed for r in records))
    assert stat(html, "total") == format_credits(sum(r.total for r in records))
    assert stat(html, "royalties") == format_credits(sum(r.royalty for r in records))
    assert stat(html, "compute_cost") == format_credits(sum(r.compute_cost for r in records))
    for chart in ("cost-per-day", "calls-per-day", "top-models"):
        assert re.search(rf'<svg class="chart" id="{chart}"[^>]* role="img"', html), chart
    assert html.count('class="chart-bar"') >= (END - START).days + 1
    # The breakdown (by model by default) lists each model the team called.
    for name in {r.model_name for r in records}:
        assert f">{name}</th>" in html
    assert "Models you depend on most" in html


def test_the_page_and_the_api_agree(world):
    client = browser(world.admin)
    page = client.get("/teams/acme/usage/", RANGE | {"group_by": "project"}).content.decode()
    body = client.get("/v1/teams/acme/usage", RANGE | {"group_by": "project"}).json()
    for row in body["rows"]:
        assert f"<strong>{format_credits(Decimal(row['total']))}</strong>" in page
    assert stat(page, "total") == format_credits(Decimal(body["totals"]["total"]))


@pytest.mark.parametrize("group_by", ["model", "version", "key", "user", "project", "day"])
def test_each_breakdown_tab_renders(world, group_by):
    response = browser(world.owner).get("/teams/acme/usage/", RANGE | {"group_by": group_by})
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<a href="[^"]*group_by=' + group_by + r'[^"]*" aria-current="page"', html)
    assert "data-report-table" in html and "<tfoot>" in html


def test_csv_links_carry_the_same_parameters(world):
    params = RANGE | {"group_by": "key", "project": "web-shop"}
    html = browser(world.billing).get("/teams/acme/usage/", params).content.decode()
    link = unescape(re.search(r'href="([^"]+)" download data-csv-link', html).group(1))
    url = urlsplit(link)
    assert url.path == "/v1/teams/acme/usage"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {
        "start": START.isoformat(),
        "end": END.isoformat(),
        "group_by": "key",
        "project": "web-shop",
        "format": "csv",
    }
    csv = browser(world.billing).get(link)
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")


def test_presets_and_the_project_filter(world):
    UsageRecordFactory(team=world.acme, model=world.models["sentiment"], project="today-only")
    html = browser(world.billing).get("/teams/acme/usage/").content.decode()
    assert '<option value="this_month" selected>' in html
    assert '<option value="today-only">today-only</option>' in html
    html = (
        browser(world.billing)
        .get("/teams/acme/usage/", {"range": "this_month", "project": "today-only"})
        .content.decode()
    )
    assert stat(html, "calls") == "1"


def test_a_bad_date_is_explained_and_this_month_shown(world):
    response = browser(world.billing).get("/teams/acme/usage/", {"start": "2025-02-30"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-report-error" in html and "start: use an ISO date" in unescape(html)
    today = timezone.now().date()
    assert f'value="{today.replace(day=1).isoformat()}"' in html


def test_an_empty_period_says_so(world):
    html = (
        browser(world.billing)
        .get("/teams/acme/usage/", {"start": "2024-01-01", "end": "2024-01-31"})
        .content.decode()
    )
    assert "No charges in this period" in html and "No usage in this period" in html
    assert 'class="chart-bar"' not in html
    assert stat(html, "total") == "0.00"


def test_other_teams_private_data_never_appears(world):
    html = browser(world.billing).get("/teams/acme/usage/", RANGE).content.decode()
    for group_by in ("project", "key", "user", "model"):
        html += (
            browser(world.billing)
            .get("/teams/acme/usage/", RANGE | {"group_by": group_by})
            .content.decode()
        )
    globex_key = UsageRecord.objects.filter(team=world.globex).first().key_prefix
    for secret in ("globex-secret-project", globex_key, "outsider", "globex-only-model"):
        assert secret not in html
    # The owner of the models sees what it earned, not who called or from which project.
    earnings = ""
    for group_by in ("model", "version", "day"):
        earnings += (
            browser(world.admin)
            .get("/teams/modelco/earnings/", RANGE | {"group_by": group_by})
            .content.decode()
        )
    acme_keys = set(
        UsageRecord.objects.filter(team=world.acme).values_list("key_prefix", flat=True)
    )
    for secret in ("globex-secret-project", "web-shop", "nightly-batch", *acme_keys - {""}):
        assert secret not in earnings


def test_the_earnings_page(world):
    response = browser(world.admin).get("/teams/modelco/earnings/", RANGE)
    assert response.status_code == 200
    html = response.content.decode()
    records = owner_records(world.modelco, START, END)
    assert stat(html, "royalties") == format_credits(sum(r.royalty for r in records))
    assert stat(html, "calls") == format_count(len(records))
    for chart in ("royalties-per-day", "calls-per-day", "top-earning-models"):
        assert f'id="{chart}"' in html
    assert "/v1/teams/modelco/earnings?" in html
    tabs = re.findall(r"group_by=(\w+)", html)
    assert set(tabs) >= {"model", "version", "day"} and "key" not in tabs


@pytest.mark.parametrize("page", ["usage", "earnings"])
def test_page_access(world, page):
    url = f"/teams/acme/{page}/"
    assert browser(world.member).get(url).status_code == 403
    assert browser(world.outsider).get(url).status_code == 404
    assert browser(world.owner).get("/teams/no-such-team/usage/").status_code == 404
    response = Client().get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    for user in (world.owner, world.admin, world.billing):
        assert browser(user).get(url).status_code == 200


def test_the_overview_links_each_readable_team(world):
    html = browser(world.admin).get("/billing/").content.decode()
    for slug in ("acme", "modelco", world.admin.username):
        assert f'href="/teams/{slug}/usage/"' in html
        assert f'href="/teams/{slug}/earnings/"' in html
    html = browser(world.member).get("/billing/").content.decode()
    assert 'href="/teams/acme/usage/"' not in html


def test_the_team_page_links_billing_roles_to_usage(world):
    link = 'href="/teams/acme/usage/"'
    assert link in browser(world.billing).get("/teams/acme/").content.decode()
    assert link not in browser(world.member).get("/teams/acme/").content.decode()


# -- the model page's Value card -----------------------------------------------------------------


def test_the_model_page_shows_its_value_to_the_owners_members(world):
    model = world.models["sentiment"]
    model.visibility = "public"
    model.save()
    now = timezone.now()
    for days_ago in (0, 3, 3, 12, 40):
        UsageRecordFactory(
            team=world.globex, model=model, started_at=now - timedelta(days=days_ago, minutes=5)
        )
    member = UserFactory()
    MembershipFactory(team=world.modelco, user=member, role=Role.MEMBER)
    response = browser(member).get(f"/{model.owner.slug}/{model.slug}")
    if response.status_code == 301:
        response = browser(member).get(response["Location"])
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    assert 'id="value"' in html and "Expects:" not in html  # no template comment leaks
    assert 'id="model-value-revenue"' in html and 'id="model-value-calls"' in html
    today = now.date()
    recent = owner_records(world.modelco, today - timedelta(days=29), today, model=model)
    assert re.search(rf'data-stat="value-calls">{re.escape(format_count(len(recent)))}<', html)
    revenue_text = re.escape(format_credits(sum(r.royalty for r in recent)))
    assert re.search(rf'data-stat="value-royalties">{revenue_text}<', html)
    # 30 bars per chart, days without calls included.
    revenue = html.split('id="model-value-revenue"')[1].split("</svg>")[0]
    assert revenue.count('class="chart-bar"') == 30
    for viewer in (world.outsider, UserFactory()):
        page = browser(viewer).get(f"/{model.owner.slug}/{model.slug}", follow=True)
        assert page.status_code == 200
        assert 'id="value"' not in page.content.decode()
