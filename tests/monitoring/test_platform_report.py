"""The platform report: usage of every team and model for staff only, equal to independent
sums of the usage records (rolled-up days included), the same figures on the page, in JSON
and in CSV."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import UsageRecord
from billing.rollups import rollup_whole_day
from monitoring.selectors import platform_usage
from tests.billing.report_world import (
    END,
    START,
    build_world,
    expected_report,
    measures_of,
    record,
)
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key

pytestmark = pytest.mark.django_db

RANGE = {"range": "custom", "start": START.isoformat(), "end": END.isoformat()}
MEASURES = (
    "calls",
    "billed_calls",
    "errors",
    "rejected",
    "compute_seconds",
    "compute_cost",
    "royalties",
    "total",
)


@pytest.fixture
def world():
    world = build_world(calls=70)
    rolled = START + timedelta(days=3)
    rollup_whole_day(day=rolled, cutoff=timezone.now())
    # A call of a rolled-up day that finished after its rollup, and a third team's.
    rng = random.Random(9)
    record(rng, team=world.acme, model=world.models["sentiment"], day=rolled)
    record(rng, team=TeamFactory(slug="initech"), model=world.models["translate"], day=END)
    record(rng, team=world.acme, model=world.models["sentiment"], day=END + timedelta(days=1))
    return world


@pytest.fixture
def staff():
    return UserFactory(username="operator", is_staff=True)


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def independent(group_by: str) -> dict:
    """{key: measures} summed here from every record of the range."""
    records = list(UsageRecord.objects.filter(day__range=(START, END)).select_related("team"))
    if group_by != "team":
        return expected_report(records, group_by, start=START, end=END)
    by_team = {}
    for r in records:
        by_team.setdefault(r.team.slug, []).append(r)
    return {slug: measures_of(rows) for slug, rows in by_team.items()}


@pytest.mark.parametrize("group_by", ["team", "model", "day"])
def test_json_equals_independent_sums_and_the_csv_and_page_equal_the_json(world, staff, group_by):
    client = browser(staff)
    api = client.get("/v1/platform/usage", RANGE | {"group_by": group_by})
    assert api.status_code == 200, api.content
    body = api.json()
    rows = {row["key"]: {m: row[m] for m in MEASURES} for row in body["rows"]}
    want = independent(group_by)
    if group_by == "day":
        assert len(rows) == (END - START).days + 1
    assert rows == want
    assert body["totals"] == measures_of(UsageRecord.objects.filter(day__range=(START, END)))
    if group_by == "team":
        assert {"acme", "globex", "initech"} <= set(rows)

    # The page's CSV, the API's CSV and the JSON are the same figures.
    page_csv = client.get("/admin-report/", RANGE | {"group_by": group_by, "format": "csv"})
    assert page_csv.status_code == 200 and page_csv["Content-Type"].startswith("text/csv")
    assert "attachment" in page_csv["Content-Disposition"]
    api_csv = client.get("/v1/platform/usage", RANGE | {"group_by": group_by, "format": "csv"})
    assert page_csv.content == api_csv.content
    lines = list(csv.reader(io.StringIO(page_csv.content.decode())))
    assert lines[0] == ["key", "label", *MEASURES]
    for line in lines[1:-1]:
        assert [str(rows[line[0].lstrip("'")][m]) for m in MEASURES] == line[2:]
    assert lines[-1][1] == "Total"
    assert lines[-1][2:] == [str(body["totals"][m]) for m in MEASURES]

    # The page's table.
    html = client.get("/admin-report/", RANGE | {"group_by": group_by}).content.decode()
    for row in body["rows"]:
        match = re.search(rf'<tr data-row="{re.escape(row["label"])}">(.*?)</tr>', html, re.S)
        assert match, row["label"]
        cells = dict(re.findall(r'data-stat="([a-z_]+)">(?:<strong>)?([^<]*)<', match[1]))
        assert cells == {m: str(row[m]) for m in MEASURES}
    assert 'id="platform-calls"' in html and 'id="platform-cost"' in html


def test_the_selector_reads_rollups_like_the_records(world):
    with_rollups = platform_usage(START, END, group_by="team")
    assert with_rollups.totals.calls == UsageRecord.objects.filter(day__range=(START, END)).count()
    assert with_rollups.totals.total == sum(
        (r.total for r in UsageRecord.objects.filter(day__range=(START, END))), Decimal(0)
    )
    assert [row.total for row in with_rollups.rows] == sorted(
        (row.total for row in with_rollups.rows), reverse=True
    )


def test_only_staff_may_read_it(world, staff):
    member = world.owner
    assert browser(member).get("/admin-report/").status_code == 404
    assert browser(member).get("/admin-report/", {"format": "csv"}).status_code == 404
    assert browser(member).get("/v1/platform/usage").status_code == 404
    anonymous = Client().get("/admin-report/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert Client().get("/v1/platform/usage").status_code == 401
    assert browser(staff).get("/admin-report/").status_code == 200
    # A staff member's personal key reads it; a team key never reads every team.
    team = TeamFactory(slug="ops")
    MembershipFactory(team=team, user=staff, role="owner")
    personal = APIClient()
    personal.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(staff)[1]}")
    assert personal.get("/v1/platform/usage").status_code == 200
    team_key = APIClient()
    team_key.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(staff, team=team)[1]}")
    assert team_key.get("/v1/platform/usage").status_code == 404


def test_bad_parameters(world, staff):
    client = browser(staff)
    page = client.get("/admin-report/", {"group_by": "planet"})
    assert page.status_code == 200 and "group_by: one of team, model, day" in page.content.decode()
    assert client.get("/admin-report/", {"group_by": "planet", "format": "csv"}).status_code == 400
    api = client.get("/v1/platform/usage", {"start": "2025-04-02", "end": "2025-04-01"})
    assert api.status_code == 400 and api.json()["error"]["error_type"] == "InputError"


def test_the_account_menu_links_staff_to_the_report(world, staff):
    assert 'href="/admin-report/"' in browser(staff).get("/dashboard/").content.decode()
    assert 'href="/admin-report/"' not in browser(world.owner).get("/dashboard/").content.decode()
