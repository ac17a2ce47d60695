"""/v1/teams/{team}/usage and /earnings: every figure, in JSON and in CSV, equals an
independent Decimal sum over the usage records, with and without rollups; access follows
the team's roles and the key's scopes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import RolledUpDay
from billing.rollups import rollup_whole_day
from marketplace.accounts.models import Role
from tests.conftest import assert_error_shape
from tests.factories import MembershipFactory, UserFactory, make_key

from .factories import UsageRecordFactory
from .report_world import (
    COUNTS,
    END,
    MEASURES,
    START,
    as_strings,
    build_world,
    expected_report,
    measures_of,
    owner_records,
    team_records,
)

pytestmark = pytest.mark.django_db

RANGES = [
    (START, END),  # the whole data set, across two months
    (date(2025, 4, 1), date(2025, 4, 30)),  # one calendar month
    (date(2025, 3, 28), date(2025, 3, 28)),  # one day
    (date(2025, 5, 1), date(2025, 5, 10)),  # no calls at all
]


@pytest.fixture
def world():
    return build_world()


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def with_key(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client


def get_json(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def get_csv(client, url, **params):
    response = client.get(url, params | {"format": "csv"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return response, list(csv.reader(io.StringIO(response.content.decode())))


def assert_report_equals(body: dict, expected: dict, *, ordered_days: bool = False) -> None:
    got = {row["key"]: {m: row[m] for m in MEASURES} for row in body["rows"]}
    assert got == expected
    assert len(body["rows"]) == len(expected)  # no key twice
    totals = {
        m: sum((row[m] if m in COUNTS else Decimal(row[m]) for row in expected.values()), 0)
        for m in MEASURES
    }
    assert body["totals"] == as_strings(totals)
    if ordered_days:
        assert [row["key"] for row in body["rows"]] == sorted(expected)


# -- figures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "group_by", ["model", "version", "key", "user", "project", "day", "status"]
)
@pytest.mark.parametrize(("start", "end"), RANGES)
def test_usage_equals_the_sum_of_records(world, group_by, start, end):
    body = get_json(
        session(world.billing),
        "/v1/teams/acme/usage",
        start=start.isoformat(),
        end=end.isoformat(),
        group_by=group_by,
    )
    assert body["team"] == "acme" and body["currency"] == "credits"
    assert (body["start"], body["end"], body["group_by"]) == (
        start.isoformat(),
        end.isoformat(),
        group_by,
    )
    records = team_records(world.acme, start, end)
    assert_report_equals(
        body,
        expected_report(records, group_by, start=start, end=end),
        ordered_days=group_by == "day",
    )
    assert body["totals"] == measures_of(records)


def test_money_is_exact_strings_with_six_places(world):
    body = get_json(session(world.owner), "/v1/teams/acme/usage", start=START, end=END)
    for row in [body["totals"], *body["rows"]]:
        for name in ("compute_cost", "royalties", "total"):
            assert isinstance(row[name], str) and len(row[name].split(".")[1]) == 6
        assert len(row["compute_seconds"].split(".")[1]) == 3
        assert isinstance(row["calls"], int)


@pytest.mark.parametrize("project", ["web-shop", "nightly-batch"])
@pytest.mark.parametrize("group_by", ["model", "key", "day"])
def test_a_project_filter_sums_only_that_project(world, project, group_by):
    body = get_json(
        session(world.admin),
        "/v1/teams/acme/usage",
        start=START,
        end=END,
        group_by=group_by,
        project=project,
    )
    assert body["project"] == project
    records = team_records(world.acme, START, END, project=project)
    assert records
    assert_report_equals(body, expected_report(records, group_by, start=START, end=END))


@pytest.mark.parametrize("group_by", ["model", "version", "day", "status"])
@pytest.mark.parametrize(("start", "end"), RANGES[:3])
def test_earnings_equal_the_sum_of_every_callers_records(world, group_by, start, end):
    MembershipFactory(team=world.modelco, user=world.billing, role=Role.BILLING)
    body = get_json(
        session(world.billing),
        "/v1/teams/modelco/earnings",
        start=start,
        end=end,
        group_by=group_by,
    )
    records = owner_records(world.modelco, start, end)
    if (start, end) == (START, END):
        assert {r.team_id for r in records} == {world.acme.pk, world.globex.pk}
    assert_report_equals(body, expected_report(records, group_by, start=start, end=end))


def test_rolled_up_days_and_late_records_still_sum_exactly(world):
    rolled = [START + timedelta(days=n) for n in range(0, 37, 3)]
    for day in rolled:
        rollup_whole_day(day=day, cutoff=timezone.now())
    assert RolledUpDay.objects.filter(team=world.acme).count() == len(rolled)
    # Calls that finished after their day was rolled up: created after the cutoff.
    for day in rolled[::2]:
        for status in ("succeeded", "failed", "rejected"):
            UsageRecordFactory(
                team=world.acme,
                model=world.models["translate"],
                status=status,
                started_at=datetime.combine(day, time(23), tzinfo=UTC),
                project="web-shop",
            )
        UsageRecordFactory(
            team=world.globex,
            model=world.models["sentiment"],
            started_at=datetime.combine(day, time(22), tzinfo=UTC),
        )
    client = session(world.admin)
    for group_by in ("model", "version", "key", "user", "project", "day", "status"):
        for start, end in RANGES[:3]:
            body = get_json(client, "/v1/teams/acme/usage", start=start, end=end, group_by=group_by)
            records = team_records(world.acme, start, end)
            assert_report_equals(body, expected_report(records, group_by, start=start, end=end))
            _, rows = get_csv(
                client, "/v1/teams/acme/usage", start=start, end=end, group_by=group_by
            )
            assert csv_as_json(rows) == (body["rows"], body["totals"])
    for group_by in ("model", "version", "day"):
        body = get_json(
            client, "/v1/teams/modelco/earnings", start=START, end=END, group_by=group_by
        )
        records = owner_records(world.modelco, START, END)
        assert_report_equals(body, expected_report(records, group_by, start=START, end=END))


def test_the_default_range_is_this_month_to_date(world):
    today = timezone.now().date()
    UsageRecordFactory(team=world.acme, model=world.models["sentiment"])
    body = get_json(session(world.billing), "/v1/teams/acme/usage")
    assert body["start"] == today.replace(day=1).isoformat()
    assert body["end"] == today.isoformat()
    assert body["group_by"] == "model"
    records = team_records(world.acme, today.replace(day=1), today)
    assert body["totals"] == measures_of(records) and body["totals"]["calls"] >= 1


def test_presets_pick_their_range(world):
    today = timezone.now().date()
    body = get_json(session(world.billing), "/v1/teams/acme/usage", range="last_30_days")
    assert (body["start"], body["end"]) == (
        (today - timedelta(days=29)).isoformat(),
        today.isoformat(),
    )
    body = get_json(session(world.billing), "/v1/teams/acme/usage", range="last_month")
    last = today.replace(day=1) - timedelta(days=1)
    assert (body["start"], body["end"]) == (last.replace(day=1).isoformat(), last.isoformat())


# -- CSV -----------------------------------------------------------------------------------------


def csv_as_json(rows):
    header, *body, total = rows
    assert header == ["key", "label", *MEASURES]
    assert total[:2] == ["", "Total"]

    def measures(values):
        return {
            m: (int(v) if m in ("calls", "billed_calls", "errors", "rejected") else v)
            for m, v in zip(MEASURES, values, strict=True)
        }

    parsed = [{"key": r[0] or None, "label": r[1], **measures(r[2:])} for r in body]
    return parsed, measures(total[2:])


@pytest.mark.parametrize("group_by", ["model", "version", "key", "user", "project", "day"])
def test_csv_has_the_json_rows_and_a_total_line(world, group_by):
    client = session(world.billing)
    params = {"start": START, "end": END, "group_by": group_by}
    body = get_json(client, "/v1/teams/acme/usage", **params)
    response, rows = get_csv(client, "/v1/teams/acme/usage", **params)
    assert csv_as_json(rows) == (body["rows"], body["totals"])
    assert response["Content-Disposition"] == (
        f'attachment; filename="usage-acme-{START}-{END}-by-{group_by}.csv"'
    )
    # The same figures once more, straight from the records.
    records = team_records(world.acme, START, END)
    parsed, totals = csv_as_json(rows)
    assert totals == measures_of(records)
    assert {r["key"]: {m: r[m] for m in MEASURES} for r in parsed} == expected_report(
        records, group_by, start=START, end=END
    )


def test_accept_text_csv_answers_csv(world):
    response = session(world.billing).get(
        "/v1/teams/acme/usage", {"start": START, "end": END}, HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment; filename=")


def test_earnings_csv(world):
    client = session(world.admin)
    body = get_json(client, "/v1/teams/modelco/earnings", start=START, end=END, group_by="day")
    response, rows = get_csv(
        client, "/v1/teams/modelco/earnings", start=START, end=END, group_by="day"
    )
    assert csv_as_json(rows) == (body["rows"], body["totals"])
    assert "earnings-modelco-" in response["Content-Disposition"]


def test_csv_cells_never_start_a_formula(world):
    started = timezone.now() - timedelta(minutes=5)
    UsageRecordFactory(
        team=world.acme,
        model=world.models["sentiment"],
        project='=HYPERLINK("http://evil")',
        started_at=started,
    )
    # The record's own day: "today" minus five minutes is yesterday just after midnight.
    day = timezone.localdate(started)
    _, rows = get_csv(
        session(world.billing), "/v1/teams/acme/usage", start=day, end=day, group_by="project"
    )
    cells = [cell for row in rows for cell in row[:2]]
    assert '\'=HYPERLINK("http://evil")' in cells
    assert not any(cell.startswith("=") for cell in cells)


def test_errors_stay_json_when_csv_was_asked_for(world):
    response = session(world.billing).get("/v1/teams/acme/usage", {"format": "csv", "start": "x"})
    assert_error_shape(response, 400, "InputError")
    response = session(world.billing).get("/v1/teams/acme/usage", {"format": "xml"})
    assert "format" in assert_error_shape(response, 400, "InputError")["message"]


# -- input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"start": "2025-13-01"}, "start: use an ISO date"),
        ({"start": "yesterday"}, "start: use an ISO date"),
        ({"end": "2025/04/01"}, "end: use an ISO date"),
        ({"start": "2025-04-10", "end": "2025-04-01"}, "end: must not be before start"),
        ({"start": "2000-01-01", "end": "2025-01-01"}, "at most"),
        ({"group_by": "colour"}, "group_by: one of model, version, key, user, project, day"),
        ({"range": "fortnight"}, "range: one of"),
        ({"project": "p" * 65}, "project: at most 64"),
    ],
)
def test_bad_parameters_are_clear_400s(world, params, words):
    response = session(world.billing).get("/v1/teams/acme/usage", params)
    assert words in assert_error_shape(response, 400, "InputError")["message"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"group_by": "key"}, "group_by: one of model, version, day, status"),
        ({"group_by": "user"}, "group_by: one of"),
        ({"project": "web-shop"}, "project: earnings are not broken down"),
    ],
)
def test_earnings_never_break_down_by_the_callers(world, params, words):
    response = session(world.admin).get("/v1/teams/modelco/earnings", params)
    assert words in assert_error_shape(response, 400, "InputError")["message"]


# -- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["usage", "earnings"])
def test_session_access_follows_roles(world, endpoint):
    url = f"/v1/teams/acme/{endpoint}"
    for user in (world.owner, world.admin, world.billing):
        assert session(user).get(url).status_code == 200
    assert_error_shape(session(world.member).get(url), 403, "AuthorizationError")
    assert_error_shape(session(world.outsider).get(url), 404, "NotFoundError")
    assert_error_shape(session(world.owner).get("/v1/teams/nobody-here/usage"), 404)
    assert_error_shape(APIClient().get(url), 401, "AuthenticationError")


def test_personal_keys_need_the_billing_read_scope(world):
    url = "/v1/teams/acme/usage"
    _, without = make_key(world.billing, scopes=["algo://*"])
    _, with_scope = make_key(world.billing, scopes=["billing:read"])
    assert "billing:read" in assert_error_shape(with_key(without).get(url), 403)["message"]
    assert with_key(with_scope).get(url).status_code == 200
    _, member_key = make_key(world.member, scopes=["billing:read"])
    assert_error_shape(with_key(member_key).get(url), 403, "AuthorizationError")
    _, outsider_key = make_key(world.outsider, scopes=["billing:read"])
    assert_error_shape(with_key(outsider_key).get(url), 404, "NotFoundError")


def test_team_keys_read_their_own_team_only(world):
    url = "/v1/teams/acme/usage"
    _, reader = make_key(world.admin, team=world.acme, scopes=["billing:read"])
    _, caller = make_key(world.admin, team=world.acme, scopes=["algo://*"])
    _, globex_reader = make_key(world.outsider, team=world.globex, scopes=["billing:read"])
    assert with_key(reader).get(url).status_code == 200
    assert get_json(with_key(reader), url, start=START, end=END)["totals"] == measures_of(
        team_records(world.acme, START, END)
    )
    assert_error_shape(with_key(caller).get(url), 403, "AuthorizationError")
    assert_error_shape(with_key(globex_reader).get(url), 404, "NotFoundError")
    # A team key never acts for another team, even one its creator can read.
    assert_error_shape(with_key(reader).get("/v1/teams/modelco/earnings"), 404, "NotFoundError")
    assert with_key(globex_reader).get("/v1/teams/globex/usage").status_code == 200


def test_other_teams_calls_never_appear(world):
    body = get_json(
        session(world.billing), "/v1/teams/acme/usage", start=START, end=END, group_by="project"
    )
    assert "globex-secret-project" not in str(body)
    body = get_json(
        session(world.billing), "/v1/teams/acme/usage", start=START, end=END, group_by="model"
    )
    assert "globex/globex-only-model" not in {row["key"] for row in body["rows"]}


def test_a_new_member_reads_nothing_before_joining(world):
    newcomer = UserFactory()
    assert session(newcomer).get("/v1/teams/acme/usage").status_code == 404
    MembershipFactory(team=world.acme, user=newcomer, role=Role.BILLING)
    assert session(newcomer).get("/v1/teams/acme/usage").status_code == 200


def test_the_schema_documents_both_reports(client):
    schema = client.get("/v1/schema", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/v1/teams/{team}/usage", "/v1/teams/{team}/earnings"):
        operation = paths[path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"start", "end", "group_by", "format"} <= names
        assert "text/csv" in operation["responses"]["200"]["content"]
