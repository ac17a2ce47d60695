"""Generated invocations of a model with known latencies, statuses, cold starts, versions and
callers, and the figures they should give, computed here in plain Python, independently of
the SQL under test: a percentile is the linear interpolation between the two nearest values
(percentile_cont, R's type 7, statistics.quantiles(method="inclusive"))."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.models import Invocation
from marketplace.accounts.models import Role, Team, User
from tests.catalog.factories import ModelFactory, VersionFactory
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.gateway.factories import InvocationFactory

STATUSES = ["succeeded"] * 6 + ["failed", "failed", "timeout", "canceled", "running", "queued"]
COUNTED = ("succeeded", "failed", "timeout")
ERRORS = ("failed", "timeout")
ERROR_TYPES = ("AlgorithmError", "ValueError", "")  # "": the model gave none
# A fixed "now" in the middle of an hour: the windows and buckets are known to the test.
NOW = datetime(2025, 5, 14, 10, 37, 12, 345678, tzinfo=UTC)


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (what percentile_cont does)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def check_percentile_definition(values: list[float]) -> None:
    """The interpolation above is statistics.quantiles' inclusive method."""
    if len(values) >= 2:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        for q in (50, 95, 99):
            assert math.isclose(cuts[q - 1], percentile(values, q / 100), abs_tol=1e-9)


@dataclass(frozen=True)
class Expected:
    calls: int = 0
    errors: int = 0
    cold_starts: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def expected(calls: list[Invocation]) -> Expected:
    counted = [c for c in calls if c.status in COUNTED and c.finished_at is not None]
    latencies = [(c.finished_at - c.created_at) / timedelta(microseconds=1) / 1000 for c in counted]
    check_percentile_definition(latencies)
    return Expected(
        calls=len(counted),
        errors=sum(c.status in ERRORS for c in counted),
        cold_starts=sum(c.cold_start for c in counted),
        p50_ms=percentile(latencies, 0.5),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
    )


def floor(moment: datetime, bucket: str) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


@dataclass
class World:
    owners: Team
    owner: User
    caller_team: Team
    caller: User
    outsider: User
    model: object
    versions: dict
    other_model: object
    calls: list[Invocation] = field(default_factory=list)

    def in_range(self, start: datetime, end: datetime, version: str | None = None):
        return [
            c
            for c in self.calls
            if start <= c.created_at < end and (version is None or c.version_label == version)
        ]

    def by_bucket(self, start, end, bucket: str, version: str | None = None) -> dict:
        groups = defaultdict(list)
        for c in self.in_range(start, end, version):
            groups[floor(c.created_at, bucket)].append(c)
        return {moment: expected(calls) for moment, calls in groups.items()}


def build_world(*, seed: int = 5, calls: int = 400, days: int = 32, now: datetime = NOW) -> World:
    """Calls of three versions of acme/vision by two caller teams, spread over the last
    `days` days before `now` (more of them in the last day), with every status, random
    latencies in whole microseconds (some identical, so ties happen), cold starts, error
    types and inputs; plus calls of another model that must never count."""
    rng = random.Random(seed)
    owners = TeamFactory(slug="acme")
    owner = UserFactory(username="acme-owner")
    MembershipFactory(team=owners, user=owner, role=Role.MEMBER)
    caller_team = TeamFactory(slug="globex")
    caller = UserFactory(username="globex-dev")
    MembershipFactory(team=caller_team, user=caller, role=Role.OWNER)
    outsider = UserFactory(username="outsider")
    model = ModelFactory(owner=owners, slug="vision", visibility="public")
    versions = {
        number: VersionFactory(model=model, number=number) for number in ("1.0.0", "1.1.0", "2.0.0")
    }
    other_model = ModelFactory(owner=owners, slug="other", visibility="public")
    other_version = VersionFactory(model=other_model, number="1.0.0")
    world = World(owners, owner, caller_team, caller, outsider, model, versions, other_model)
    callers = [caller_team, owners]
    for index in range(calls):
        recent = index % 2 == 0
        age = timedelta(seconds=rng.uniform(0, 86400 if recent else days * 86400))
        world.calls.append(
            make_call(
                rng,
                rng.choice(list(versions.values())),
                created_at=now - age,
                caller_team=rng.choice(callers),
            )
        )
    for _ in range(15):
        make_call(rng, other_version, created_at=now - timedelta(hours=rng.uniform(0, 30)))
    return world


def make_call(rng, version, *, created_at, caller_team=None, **overrides) -> Invocation:
    status = overrides.pop("status", None) or rng.choice(STATUSES)
    micros = rng.choice([rng.randint(1_000, 3_000_000), 250_000])  # ties at 250 ms
    finished = status in COUNTED or status == "canceled"
    error = None
    if status in ERRORS:
        kind = "TimeoutError" if status == "timeout" else rng.choice(ERROR_TYPES)
        error = {"message": f"it went wrong ({kind or 'no type'})"}
        if kind:
            error["error_type"] = kind
        if status == "failed":
            error["stacktrace"] = 'Traceback (most recent call last):\n  File "predict.py"'
    fields = {
        "version": version,
        "status": status,
        "created_at": created_at,
        "started_at": created_at if status != "queued" else None,
        "finished_at": created_at + timedelta(microseconds=micros) if finished else None,
        "cold_start": rng.random() < 0.2,
        "error": error,
        "input_preview": f'{{"image": "{rng.randint(0, 10**6)}"}}',
    }
    if caller_team is not None:
        fields["caller_team"] = caller_team
    return InvocationFactory(**(fields | overrides))
