"""A small world of teams, keys, models and usage records for the report tests, and the
independent sums the reports are checked against (plain Python over UsageRecord rows)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from billing.models import UsageRecord
from marketplace.accounts.models import Role, Team, User
from tests.catalog.factories import ModelFactory, VersionFactory
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key

from .factories import UsageRecordFactory

START = date(2025, 3, 20)
END = date(2025, 4, 25)
STATUSES = ["succeeded"] * 7 + ["failed", "timeout", "canceled", "rejected"]
COUNTS = ("calls", "billed_calls", "errors", "rejected")
MICRO = Decimal("0.000001")
MILLI = Decimal("0.001")
ERRORS = ("failed", "timeout")
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


@dataclass
class World:
    acme: Team
    globex: Team
    modelco: Team
    owner: User
    admin: User
    billing: User
    member: User
    outsider: User
    keys: dict = field(default_factory=dict)  # name -> secret
    models: dict = field(default_factory=dict)


def build_world(seed: int = 11, calls: int = 160) -> World:
    rng = random.Random(seed)
    acme, globex, modelco = (TeamFactory(slug=s) for s in ("acme", "globex", "modelco"))
    people = {}
    for name, role in (
        ("acme-owner", Role.OWNER),
        ("acme-admin", Role.ADMIN),
        ("acme-billing", Role.BILLING),
        ("acme-member", Role.MEMBER),
    ):
        people[name] = UserFactory(username=name)
        MembershipFactory(team=acme, user=people[name], role=role)
    outsider = UserFactory(username="outsider")
    MembershipFactory(team=globex, user=outsider, role=Role.OWNER)
    MembershipFactory(team=modelco, user=people["acme-admin"], role=Role.OWNER)

    world = World(
        acme=acme,
        globex=globex,
        modelco=modelco,
        owner=people["acme-owner"],
        admin=people["acme-admin"],
        billing=people["acme-billing"],
        member=people["acme-member"],
        outsider=outsider,
    )
    for name, owner, royalty in (
        ("sentiment", modelco, "0.001"),
        ("translate", modelco, "0.0025"),
        ("acme-tool", acme, "0.000125"),
        ("globex-only-model", globex, "0.5"),
    ):
        model = ModelFactory(owner=owner, slug=name)
        VersionFactory(model=model, number="1.0.0", royalty_per_call=Decimal(royalty))
        VersionFactory(model=model, number="1.1.0", royalty_per_call=Decimal(royalty) * 2)
        world.models[name] = model

    keys = {
        "acme-web": make_key(world.admin, team=acme, scopes=["algo://*"], project="web-shop"),
        "acme-batch": make_key(world.owner, team=acme, scopes=["algo://*"]),
        "globex-key": make_key(outsider, team=globex, scopes=["algo://*"]),
    }
    projects = ["", "web-shop", "nightly-batch"]
    acme_users = [world.owner, world.admin, world.billing, None]
    acme_models = ["sentiment", "translate", "acme-tool"]
    span = (END - START).days
    for _ in range(calls):
        model = world.models[rng.choice(acme_models)]
        key = rng.choice([keys["acme-web"][0], keys["acme-batch"][0], None])
        record(
            rng,
            team=acme,
            user=rng.choice(acme_users),
            api_key=key,
            project=rng.choice(projects),
            model=model,
            day=START + timedelta(days=rng.randrange(span + 1)),
        )
    for _ in range(40):  # another team's calls, partly to the same models
        record(
            rng,
            team=globex,
            user=outsider,
            api_key=keys["globex-key"][0],
            project="globex-secret-project",
            model=world.models[rng.choice(["sentiment", "globex-only-model"])],
            day=START + timedelta(days=rng.randrange(span + 1)),
        )
    return world


def record(rng: random.Random, *, team, model, day: date, **kwargs) -> UsageRecord:
    status = kwargs.pop("status", None) or rng.choice(STATUSES)
    version = rng.choice(list(model.versions.all()))
    started = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(
        seconds=rng.randrange(86_400 - 60)
    )
    return UsageRecordFactory(
        team=team,
        model=model,
        version=version,
        status=status,
        started_at=started,
        seconds=Decimal(rng.randrange(1, 9000)) / 1000,
        price_per_second=Decimal(rng.choice(["0.002300000", "0.000175000", "0.013"])),
        **kwargs,
    )


# -- independent sums ------------------------------------------------------------------------


def key_of(group_by: str, r: UsageRecord):
    return {
        "model": lambda: r.model_name,
        "version": lambda: f"{r.model_name}/{r.version_label}",
        "key": lambda: r.key_prefix or None,
        "user": lambda: r.user.username if r.user_id else None,
        "project": lambda: r.project or None,
        "day": lambda: r.day.isoformat(),
        "status": lambda: r.status,
    }[group_by]()


def measures_of(records) -> dict:
    sums = {m: 0 for m in MEASURES[:4]} | {m: Decimal(0) for m in MEASURES[4:]}
    for r in records:
        sums["calls"] += 1
        sums["billed_calls"] += int(r.billed)
        sums["errors"] += int(r.status in ERRORS)
        sums["rejected"] += int(r.status == "rejected")
        sums["compute_seconds"] += r.billed_seconds
        sums["compute_cost"] += r.compute_cost
        sums["royalties"] += r.royalty
        sums["total"] += r.total
    return as_strings(sums)


def as_strings(sums: dict) -> dict:
    """The API's representation: counts as ints, money with six places, seconds three."""
    out = {}
    for name, value in sums.items():
        if name == "compute_seconds":
            out[name] = str(Decimal(value).quantize(MILLI))
        elif name in ("compute_cost", "royalties", "total"):
            out[name] = str(Decimal(value).quantize(MICRO))
        else:
            out[name] = value
    return out


def expected_report(records, group_by: str, *, start: date, end: date) -> dict:
    """{key: measures} over `records` (already filtered to the report's scope and range);
    per day, every day of the range."""
    groups = defaultdict(list)
    for r in records:
        assert start <= r.day <= end
        assert r.total == r.compute_cost + r.royalty
        groups[key_of(group_by, r)].append(r)
    if group_by == "day":
        day = start
        while day <= end:
            groups.setdefault(day.isoformat(), [])
            day += timedelta(days=1)
    return {key: measures_of(rows) for key, rows in groups.items()}


def team_records(team, start, end, project=None):
    records = UsageRecord.objects.filter(team=team, day__range=(start, end)).select_related("user")
    if project is not None:
        records = records.filter(project=project)
    return list(records)


def owner_records(owner, start, end, model=None):
    records = UsageRecord.objects.filter(model_owner=owner, day__range=(start, end))
    if model is not None:
        records = records.filter(model=model)
    return list(records.select_related("user"))
