"""Property tests: random mixes of calls, outcomes, price changes, rollups and date ranges;
every record is priced as the rules say (checked by an independent computation), and every
report total and breakdown equals an independent sum of the records, exact to the last
decimal place, whether rollups serve the range or not."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing import metering, reports, rollups
from billing.models import ComputePrice, UsageRecord
from gateway.models import Invocation
from tests.catalog.factories import VersionFactory
from tests.factories import TeamFactory, UserFactory, make_key

pytestmark = pytest.mark.django_db

EPOCH = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 40
STATUSES = ["succeeded"] * 5 + ["failed", "timeout", "canceled"]
PROJECTS = ["", "web", "batch"]


class Rollback(Exception):
    pass


@pytest.fixture
def world(db):
    owner = TeamFactory(slug="maker")
    versions = [
        VersionFactory(model__owner=owner, model__slug=f"m{i}", royalty_per_call=royalty)
        for i, royalty in enumerate([Decimal("0"), Decimal("0.0125"), Decimal("0.333333")])
    ]
    users = [UserFactory(username=f"caller-{i}") for i in range(2)]
    teams = [u.personal_team for u in users]
    keys = [make_key(u)[0] for u in users] + [None]
    return {"versions": versions, "users": users, "teams": teams, "keys": keys, "owner": owner}


call = st.fixed_dictionaries(
    {
        "version": st.integers(0, 2),
        "caller": st.integers(0, 1),
        "key": st.booleans(),
        "project": st.sampled_from(PROJECTS),
        "status": st.sampled_from(STATUSES),
        "start": st.integers(0, DAYS * 86400 - 1),
        "millis": st.integers(0, 30_000),
        "hardware": st.sampled_from(["cpu", "gpu"]),
    }
)
price_change = st.fixed_dictionaries(
    {
        "hardware": st.sampled_from(["cpu", "gpu"]),
        "at": st.integers(0, DAYS * 86400),
        "price": st.decimals(min_value=0, max_value=Decimal("0.05"), places=9),
    }
)


def expected_price(changes, hardware, at) -> Decimal:
    applicable = [c for c in changes if c["hardware"] == hardware and c["at"] <= at]
    if not applicable:
        return Decimal(0)
    # The latest start wins; generated duplicates of a start were dropped.
    return max(applicable, key=lambda c: c["at"])["price"]


def independent_charge(c, changes, *, increment, charge_failed, royalty) -> tuple:
    billed = c["status"] == "succeeded" or (charge_failed and c["status"] in ("failed", "timeout"))
    if not billed:
        return False, Decimal(0), Decimal(0)
    seconds = (Decimal(c["millis"]) / 1000 / increment).to_integral_value(
        rounding=ROUND_CEILING
    ) * increment
    price = expected_price(changes, c["hardware"], c["start"])
    compute = (seconds * price).quantize(Decimal("0.000001"))
    return True, compute, royalty.quantize(Decimal("0.000001"))


def make_calls(world, calls):
    for c in calls:
        version = world["versions"][c["version"]]
        user = world["users"][c["caller"]]
        key = world["keys"][c["caller"]] if c["key"] else None
        started = EPOCH + timedelta(seconds=c["start"])
        invocation = Invocation(
            id=uuid.uuid4(),
            model=version.model,
            version=version,
            build=version.build,
            version_label=version.number,
            caller_team=world["teams"][c["caller"]],
            caller_user=user,
            api_key=key,
            project=c["project"],
            status=c["status"],
            backend="local",
            hardware_class=c["hardware"],
            timeout_seconds=60,
            input_content_type="json",
            input_bytes=10,
            created_at=started,
            started_at=started,
            finished_at=started + timedelta(milliseconds=c["millis"]),
        )
        invocation.save()
        with transaction.atomic():
            metering.record_invocation(invocation)


def independent_sums(records, key):
    sums = defaultdict(lambda: defaultdict(Decimal))
    for r in records:
        row = sums[key(r)]
        row["calls"] += 1
        row["billed_calls"] += r.billed
        row["errors"] += r.status in ("failed", "timeout")
        row["rejected"] += r.status == "rejected"
        row["compute_seconds"] += r.billed_seconds
        row["compute_cost"] += r.compute_cost
        row["royalties"] += r.royalty
        row["total"] += r.total
    return sums


KEYS = {
    None: lambda r: (),
    "model": lambda r: (r.model_name,),
    "version": lambda r: (r.model_name, r.version_label),
    "key": lambda r: (r.key_prefix,),
    "user": lambda r: (r.user_id,),
    "project": lambda r: (r.project,),
    "day": lambda r: (r.day,),
    "status": lambda r: (r.status,),
}


def assert_report_matches(report, records, group_by):
    expected = independent_sums(records, KEYS[group_by])
    got = {row.key: row.as_dict() for row in report.rows}
    assert set(got) == set(expected)
    for key, row in got.items():
        for measure, value in row.items():
            assert value == expected[key][measure], (group_by, key, measure)
    totals = independent_sums(records, lambda r: ())[()]
    for measure in reports.MEASURES:
        assert getattr(report.totals, measure) == totals[measure], measure


@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    calls=st.lists(call, min_size=0, max_size=30),
    changes=st.lists(price_change, max_size=5, unique_by=lambda c: (c["hardware"], c["at"])),
    rolled_days=st.sets(st.integers(0, DAYS - 1), max_size=DAYS),
    late=st.lists(call, max_size=5),
    window=st.tuples(st.integers(0, DAYS - 1), st.integers(0, DAYS - 1)),
    group_by=st.sampled_from(list(KEYS)),
    increment=st.sampled_from([Decimal("0.001"), Decimal("0.1"), Decimal("1")]),
    charge_failed=st.booleans(),
)
def test_reports_equal_the_sum_of_their_records(
    world,
    calls,
    changes,
    rolled_days,
    late,
    window,
    group_by,
    increment,
    charge_failed,
):
    rules = override_settings(
        BILLING_SECONDS_INCREMENT=increment,
        BILLING_MINIMUM_SECONDS=Decimal(0),
        BILLING_CHARGE_FAILED_CALLS=charge_failed,
    )
    try:
        with rules, transaction.atomic():
            for change in changes:
                ComputePrice.objects.create(
                    hardware_class=change["hardware"],
                    price_per_second=change["price"],
                    effective_from=EPOCH + timedelta(seconds=change["at"]),
                )
            make_calls(world, calls)
            cutoff = datetime.now(UTC)
            for offset in rolled_days:
                rollups.rollup_whole_day(day=(EPOCH + timedelta(days=offset)).date(), cutoff=cutoff)
            # Calls recorded after their day was rolled up (they finished late).
            make_calls(world, late)
            UsageRecord.objects.filter(created_at__lte=cutoff).update(
                created_at=cutoff - timedelta(seconds=1)
            )

            records = list(UsageRecord.objects.all())
            by_id = {r.request_id: r for r in records}
            assert len(by_id) == len(calls) + len(late)
            for r in records:
                version = next(v for v in world["versions"] if v.pk == r.version_id)
                c = {
                    "status": r.status,
                    "millis": (r.ended_at - r.started_at) // timedelta(milliseconds=1),
                    "hardware": r.hardware_class,
                    "start": int((r.started_at - EPOCH).total_seconds()),
                }
                billed, compute, royalty = independent_charge(
                    c,
                    changes,
                    increment=increment,
                    charge_failed=charge_failed,
                    royalty=version.royalty_per_call,
                )
                assert (r.billed, r.compute_cost, r.royalty) == (billed, compute, royalty)
                assert r.total == r.compute_cost + r.royalty

            start_day, end_day = sorted(window)
            start = (EPOCH + timedelta(days=start_day)).date()
            end = (EPOCH + timedelta(days=end_day)).date()
            for team in world["teams"]:
                mine = [r for r in records if r.team_id == team.pk and start <= r.day <= end]
                for use_rollups in (True, False):
                    report = reports.usage_report(
                        start=start,
                        end=end,
                        team=team,
                        group_by=group_by,
                        use_rollups=use_rollups,
                    )
                    assert_report_matches(report, mine, group_by)
                for project in PROJECTS:
                    report = reports.usage_report(
                        start=start, end=end, team=team, group_by=group_by, project=project
                    )
                    assert_report_matches(
                        report, [r for r in mine if r.project == project], group_by
                    )
            earned = [r for r in records if start <= r.day <= end]
            report = reports.usage_report(
                start=start, end=end, owner=world["owner"], group_by=group_by
            )
            assert_report_matches(report, earned, group_by)
            raise Rollback
    except Rollback:
        pass


def test_a_range_across_months_is_exact_with_every_day_rolled_up(world):
    calls = [
        {
            "version": i % 3,
            "caller": i % 2,
            "key": bool(i % 3),
            "project": PROJECTS[i % 3],
            "status": STATUSES[i % len(STATUSES)],
            "start": i * 7919 % (DAYS * 86400),
            "millis": i * 37 % 5000,
            "hardware": "cpu",
        }
        for i in range(200)
    ]
    ComputePrice.objects.create(
        hardware_class="cpu", price_per_second=Decimal("0.000123457"), effective_from=EPOCH
    )
    make_calls(world, calls)
    rolled = rollups.rollup_closed_days(now=EPOCH + timedelta(days=DAYS + 2), since=EPOCH.date())
    assert rolled > 0
    start, end = date(2026, 3, 1), date(2026, 4, 30)
    for team in world["teams"]:
        records = [r for r in UsageRecord.objects.filter(team=team)]
        for group_by in KEYS:
            report = reports.usage_report(start=start, end=end, team=team, group_by=group_by)
            assert_report_matches(report, records, group_by)


def test_rolled_up_days_are_served_from_rollups_until_a_late_record_arrives(world):
    calls = [
        {
            "version": 1,
            "caller": 0,
            "key": True,
            "project": "web",
            "status": "succeeded",
            "start": day * 86400 + 3600,
            "millis": 250,
            "hardware": "cpu",
        }
        for day in range(5)
    ]
    make_calls(world, calls)
    # Written when the calls finished, long before the rollup ran.
    UsageRecord.objects.update(created_at=EPOCH + timedelta(days=5))
    team = world["teams"][0]
    start, end = EPOCH.date(), (EPOCH + timedelta(days=4)).date()
    assert rollups.rollup_closed_days(now=EPOCH + timedelta(days=30), since=start) == 5
    assert reports.clean_rolled_up_days(team, start, end) == [
        (EPOCH + timedelta(days=i)).date() for i in range(5)
    ]
    # The day's records are no longer needed: the rollup alone answers for clean days.
    before = reports.usage_report(start=start, end=end, team=team)
    assert before.totals.calls == 5
    make_calls(world, [{**calls[2], "start": 2 * 86400 + 7200}])  # finished after the rollup
    assert (EPOCH + timedelta(days=2)).date() not in reports.clean_rolled_up_days(team, start, end)
    after = reports.usage_report(start=start, end=end, team=team, group_by="day")
    records = list(UsageRecord.objects.filter(team=team))
    assert_report_matches(after, records, "day")
    assert after.totals.calls == 6
