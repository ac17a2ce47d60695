"""The monthly usage report of a big team (and the earnings report of a big model owner) at
several usage-record counts, through the public interface (`billing.reports.usage_report`):
from the raw records (`use_rollups=False`) and, after `billing.rollups.rollup_closed_days`
has rolled up every closed day, from the rollups (`use_rollups=True`), measured interleaved
in the same loop. The baseline, measured in the same loop through the same Django
connection, is one usage record fetched by primary key; every p50 is printed as a ratio to
it, and each rollup p50 as a ratio to the raw one. Once per size the two paths are checked
to give identical reports (exact Decimal equality, every row of every grouping) and equal to
an independent ORM sum. At the largest size EXPLAIN (ANALYZE, BUFFERS) of the raw monthly
totals query (and of its rollup and owner counterparts) is printed.

    .venv/bin/python bench/usage_report.py --sizes 1000000,10000000 [--repeat 20] [--keep]

The benchmark runs on a database of its own (`bench_usage`, dropped at the end unless
--keep), on a private embedded PostgreSQL (same binaries and server settings as `make run`,
stopped and removed at the end), or on the server of DATABASE_URL when it is set (its role
needs CREATEDB); development and test data are never touched.

Data, generated afresh for each size: ~200 calling teams with Zipf-skewed traffic (the
biggest, the benchmarked one, makes ~17% of the calls), 1-30 API keys and 1-40 users per team
(keys belong to a user and often a project; 5% of calls come from browser sessions without a
key), 500 models of 60 owner teams with 1-4 versions and royalties; a key calls its own 1-8
models (drawn by Zipf popularity) 90% of the time, any model by popularity otherwise; 90
closed days of calls in time order, 93% succeeded, priced as `billing.metering` prices them
(billed seconds rounded up to BILLING_SECONDS_INCREMENT, cpu/gpu per-second prices that also
exist as ComputePrice rows, compute cost rounded to six places (half away from zero, where
metering rounds half to even: ties only, immaterial here), total = compute cost + royalty,
only succeeded calls billed). Records are made by PostgreSQL itself
(INSERT ... SELECT FROM generate_series, in chunks). With `--load bulk` (the default) the
record table's secondary indexes, primary key and foreign keys are dropped for the load and
recreated from their own definitions afterwards (what pg_restore does): every constraint is
validated over every row when it is added back, so nothing is skipped. `--load indexed`
inserts into the fully indexed table instead. Then VACUUM ANALYZE, as autovacuum would.

Rollups are timed through `rollup_closed_days` (and, for comparison, the same sums computed
set-based in one statement). A what-if section (skip with --no-what-if) measures, at the
largest size, a rollup read path that does not touch the records of rolled-up days (see
`what_if_report`), with the index it needs built for the occasion and dropped afterwards.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _database import bootstrap, finish
from _platform import percentile

TEAMS = 200
OWNER_TEAMS = 60
MODELS = 500
DAYS = 90
BUCKETS = 100_000  # resolution of the weighted draws made in SQL
CHUNK = 500_000  # records per INSERT ... SELECT (one transaction each)
SESSION_SHARE = 0.05  # calls from a browser session: no key
HEADER_PROJECT_SHARE = 0.03  # calls whose X-Project header overrides the key's project
EXPLORE_SHARE = 0.10  # key calls to any model (by popularity) rather than the key's own
FAVOURITE_SLOTS = 16
PRICES = {"cpu": Decimal("0.000020000"), "gpu": Decimal("0.000500000")}
MEAN_SECONDS = {"cpu": 0.25, "gpu": 1.2}
TIMEOUT_SECONDS = {"cpu": 30, "gpu": 120}
PROJECTS = ["", "web", "mobile", "batch", "research", "ml-platform", "analytics", "growth"]
GROUPINGS = (None, "model", "version", "key", "user", "project", "day")
OWNER_GROUPINGS = (None, "model")

# -- database -----------------------------------------------------------------------------


def sql_one(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()


def sql_all(statement: str, params=None) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def sql_run(statement: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)


# -- generation ---------------------------------------------------------------------------


def zipf_buckets(n: int, s: float, buckets: int = BUCKETS) -> list[int]:
    """`buckets` indexes into range(n): a uniform draw among them is a Zipf(s) draw by rank."""
    cumulative, total = [], 0.0
    for rank in range(n):
        total += 1.0 / (rank + 1) ** s
        cumulative.append(total)
    return [
        min(n - 1, bisect.bisect_left(cumulative, (b + 0.5) / buckets * total))
        for b in range(buckets)
    ]


def favourites(rng: random.Random, model_pick: list[int]) -> list[int]:
    """The models a key calls: 1-8 of them, popular ones more likely, spread over
    FAVOURITE_SLOTS slots (a uniform draw among the slots favours the first)."""
    count = rng.choice((1, 1, 2, 2, 3, 4, 6, 8))
    chosen: list[int] = []
    while len(chosen) < count:
        m = model_pick[rng.randrange(len(model_pick))]
        if m not in chosen:
            chosen.append(m)
    slot_pick = zipf_buckets(count, 1.0, FAVOURITE_SLOTS)
    return [chosen[slot_pick[i]] for i in range(FAVOURITE_SLOTS)]


@dataclass
class Dataset:
    size: int
    first_day: date
    last_day: date
    month_start: date
    month_end: date
    team: object = None  # the benchmarked (biggest) calling team
    owner: object = None  # the benchmarked (biggest) model owner
    team_share: float = 0.0
    owner_share: float = 0.0
    month_records: int = 0
    owner_month_records: int = 0
    timings: dict = field(default_factory=dict)
    pks: list = field(default_factory=list)


def dimensions(rng: random.Random, first_day: date) -> None:
    """Teams, users, keys, models, builds, versions and prices (ORM), and the temp tables
    the record generator draws from."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from billing.models import ComputePrice
    from catalog.models import Build, Model, Version
    from marketplace.accounts.models import ApiKey, Team, User

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE billing_usagerecord, billing_usagerollup, billing_rolledupday, "
            "billing_monthlyspend, billing_computeprice, catalog_version, catalog_build, "
            "catalog_model, accounts_apikey, accounts_membership, accounts_team, "
            "accounts_user CASCADE"
        )
    created = datetime.combine(first_day, datetime.min.time(), UTC) - timedelta(days=365)
    teams = Team.objects.bulk_create(
        Team(slug=f"team-{rank:03d}", name=f"Team {rank}", created_at=created)
        for rank in range(TEAMS)
    )
    team_users: list[list[User]] = []
    unusable = make_password(None)
    pending = []
    for rank in range(TEAMS):
        count = max(1, round(40 / (rank + 1) ** 0.5))
        pending.append(
            [User(username=f"u{rank:03d}-{j:02d}", password=unusable) for j in range(count)]
        )
    flat = User.objects.bulk_create(u for users in pending for u in users)
    i = 0
    for users in pending:
        team_users.append(flat[i : i + len(users)])
        i += len(users)

    keys: list[list[ApiKey]] = []
    for rank, team in enumerate(teams):
        count = max(1, round(30 / (rank + 1) ** 0.5))
        projects = PROJECTS[: max(1, min(len(PROJECTS), count // 3 + 1))]
        keys.append(
            [
                ApiKey(
                    team=team,
                    created_by=team_users[rank][j % len(team_users[rank])],
                    name=f"key {j}",
                    prefix=f"mk_{rank:03d}{j:03d}",
                    secret_hash=hashlib.sha256(f"{rank}/{j}/{rng.random()}".encode()).hexdigest(),
                    scopes=["algo://*"],
                    project=projects[j % len(projects)],
                    created_at=created,
                )
                for j in range(count)
            ]
        )
    ApiKey.objects.bulk_create(k for team_keys in keys for k in team_keys)

    owners = rng.sample(teams, OWNER_TEAMS)
    owner_pick = zipf_buckets(OWNER_TEAMS, 1.0, 10_000)
    models = Model.objects.bulk_create(
        Model(
            owner=owners[owner_pick[rng.randrange(10_000)]],
            slug=f"model-{i:03d}",
            title=f"Model {i}",
            tagline="A benchmark model",
            runtime="python",
            visibility="public",
            hardware_class="gpu" if rng.random() < 0.2 else "cpu",
            created_at=created,
            updated_at=created,
        )
        for i in range(MODELS)
    )
    builds = Build.objects.bulk_create(
        Build(
            model=m,
            package_hash=hashlib.sha256(str(m.pk).encode()).hexdigest(),
            status="succeeded",
            runtime="python",
            created_at=created,
        )
        for m in models
    )
    versions: list[list[Version]] = []
    for m, b in zip(models, builds, strict=True):
        base = Decimal(0) if rng.random() < 0.6 else Decimal(rng.randint(100, 5000)) / 10**6
        count = rng.choice((1, 1, 2, 2, 3, 4))
        versions.append(
            [
                Version(
                    model=m,
                    build=b,
                    major=1,
                    minor=v,
                    patch=0,
                    visibility="public",
                    royalty_per_call=(base * (1 + Decimal(v) / 10)).quantize(Decimal("0.000001")),
                    published_at=created + timedelta(days=30 * v),
                )
                for v in range(count)
            ]
        )
    Version.objects.bulk_create(v for mv in versions for v in mv)
    for hardware_class, price in PRICES.items():
        ComputePrice.objects.create(
            hardware_class=hardware_class, price_per_second=price, effective_from=created
        )

    model_pick = zipf_buckets(MODELS, 1.0)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_team, bench_model, bench_pick")
        cursor.execute(
            """
            CREATE TEMP TABLE bench_team (
                idx int PRIMARY KEY, team_id bigint, n_keys int, n_users int,
                key_ids uuid[], key_prefixes text[], key_users bigint[],
                key_projects text[], key_models int[], user_ids bigint[])
            """
        )
        cursor.executemany(
            "INSERT INTO bench_team VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    rank,
                    team.pk,
                    len(keys[rank]),
                    len(team_users[rank]),
                    [k.pk for k in keys[rank]],
                    [k.prefix for k in keys[rank]],
                    [k.created_by_id for k in keys[rank]],
                    [k.project for k in keys[rank]],
                    [favourites(rng, model_pick) for _ in keys[rank]],
                    [u.pk for u in team_users[rank]],
                )
                for rank, team in enumerate(teams)
            ],
        )
        cursor.execute(
            """
            CREATE TEMP TABLE bench_model (
                idx int PRIMARY KEY, model_id uuid, owner_id bigint, name text,
                hardware_class text, price numeric(20, 9), mean_seconds float8,
                timeout_seconds int, n_versions int, version_ids uuid[], version_labels text[],
                royalties numeric[])
            """
        )
        slugs = {t.pk: t.slug for t in teams}
        cursor.executemany(
            "INSERT INTO bench_model VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    i,
                    m.pk,
                    m.owner_id,
                    f"{slugs[m.owner_id]}/{m.slug}",
                    m.hardware_class,
                    PRICES[m.hardware_class],
                    MEAN_SECONDS[m.hardware_class],
                    TIMEOUT_SECONDS[m.hardware_class],
                    len(versions[i]),
                    [v.pk for v in versions[i]],
                    [v.number for v in versions[i]],
                    [v.royalty_per_call for v in versions[i]],
                )
                for i, m in enumerate(models)
            ],
        )
        # Weighted draws as joins: bucket b (uniform) -> team index, model rank.
        cursor.execute("CREATE TEMP TABLE bench_pick (b int PRIMARY KEY, tidx int, mrank int)")
        cursor.execute(
            "INSERT INTO bench_pick SELECT * FROM unnest(%s::int[], %s::int[], %s::int[])",
            [list(range(BUCKETS)), zipf_buckets(TEAMS, 1.0), model_pick],
        )
        cursor.execute("ANALYZE bench_pick")
        cursor.execute("ANALYZE bench_team")
        cursor.execute("ANALYZE bench_model")


INSERT_RECORDS = """
WITH u AS MATERIALIZED (
    SELECT g,
           %(t0)s::timestamptz + make_interval(secs => (g + random()) * %(step)s) AS started_at,
           floor(random() * %(buckets)s)::int AS b_team,
           floor(random() * %(buckets)s)::int AS b_model,
           random() AS r_sess, random() AS r_key, random() AS r_mix, random() AS r_fav,
           random() AS r_ver, random() AS r_status, random() AS r_dur, random() AS r_proj,
           random() AS r_in, random() AS r_out, random() AS r_created
    FROM generate_series(%(a)s::bigint, %(b)s::bigint - 1) AS g
), s AS MATERIALIZED (
    SELECT u.*, pt.tidx, pm.mrank
    FROM u JOIN bench_pick pt ON pt.b = u.b_team JOIN bench_pick pm ON pm.b = u.b_model
), k AS MATERIALIZED (
    SELECT s.*, t.team_id,
           CASE WHEN s.r_sess < %(session_share)s THEN NULL
                ELSE 1 + least(floor(s.r_key * t.n_keys)::int, t.n_keys - 1) END AS kidx,
           t.n_users, t.key_ids, t.key_prefixes, t.key_users, t.key_projects, t.key_models,
           t.user_ids
    FROM s JOIN bench_team t ON t.idx = s.tidx
), c AS MATERIALIZED (
    SELECT k.g, k.started_at, k.team_id, k.r_ver, k.r_dur, k.r_in, k.r_out, k.r_created,
           CASE WHEN k.kidx IS NULL
                THEN k.user_ids[1 + least(floor(k.r_key * k.n_users)::int, k.n_users - 1)]
                ELSE k.key_users[k.kidx] END AS user_id,
           k.key_ids[k.kidx] AS api_key_id,
           coalesce(k.key_prefixes[k.kidx], '') AS key_prefix,
           CASE WHEN k.r_proj < %(header_share)s THEN 'adhoc'
                ELSE coalesce(k.key_projects[k.kidx], '') END AS project,
           CASE WHEN k.kidx IS NULL OR k.r_mix < %(explore_share)s THEN k.mrank
                ELSE k.key_models[k.kidx][1 + floor(k.r_fav * %(slots)s)::int]
           END AS midx,
           CASE WHEN k.r_status < 0.93 THEN 'succeeded'
                WHEN k.r_status < 0.96 THEN 'failed'
                WHEN k.r_status < 0.97 THEN 'timeout'
                WHEN k.r_status < 0.975 THEN 'canceled'
                ELSE 'rejected' END AS status
    FROM k
), p AS MATERIALIZED (
    SELECT c.*, m.model_id, m.owner_id, m.name, m.hardware_class, m.price,
           m.version_ids, m.version_labels, m.royalties,
           CASE WHEN c.r_ver < 0.8 THEN m.n_versions
                ELSE 1 + least(floor((c.r_ver - 0.8) / 0.2 * m.n_versions)::int,
                               m.n_versions - 1) END AS vidx,
           (CASE c.status
                WHEN 'rejected' THEN 0
                WHEN 'timeout' THEN m.timeout_seconds
                WHEN 'canceled' THEN ceil(c.r_dur * 5000)::numeric / 1000
                ELSE ceil(-ln(1 - c.r_dur) * m.mean_seconds * 1000)::numeric / 1000
            END)::numeric(16, 3) AS duration
    FROM c JOIN bench_model m ON m.idx = c.midx
), q AS MATERIALIZED (
    SELECT p.*, p.status = 'succeeded' AS billed,
           (CASE WHEN p.status = 'succeeded'
                 THEN greatest(ceil(p.duration / %(increment)s) * %(increment)s, %(minimum)s)
                 ELSE 0 END)::numeric(16, 3) AS billed_seconds,
           p.started_at + make_interval(secs => p.duration::float8) AS ended_at
    FROM p
), r AS MATERIALIZED (
    SELECT q.*,
           (CASE WHEN q.billed THEN round(q.billed_seconds * q.price, 6) ELSE 0 END
           )::numeric(20, 6) AS compute_cost,
           (CASE WHEN q.billed THEN q.royalties[q.vidx] ELSE 0 END)::numeric(20, 6) AS royalty
    FROM q
)
INSERT INTO billing_usagerecord (
    request_id, team_id, user_id, api_key_id, key_prefix, project, model_id, model_owner_id,
    model_name, version_id, version_label, status, error_type, started_at, ended_at,
    duration_seconds, billed_seconds, bytes_in, bytes_out, hardware_class, price_per_second,
    billed, compute_cost, royalty, total, day, created_at)
SELECT gen_random_uuid(), team_id, user_id, api_key_id, key_prefix, project, model_id,
       owner_id, name, version_ids[vidx], version_labels[vidx], status,
       CASE status WHEN 'failed' THEN 'ModelError' WHEN 'timeout' THEN 'TimeoutError'
                   WHEN 'rejected' THEN 'RateLimitError' ELSE '' END,
       started_at, ended_at, duration, billed_seconds,
       40 + floor(r_in * 4000)::bigint, 30 + floor(r_out * 2000)::bigint, hardware_class,
       CASE WHEN status = 'rejected' THEN 0 ELSE price END,
       billed, compute_cost, royalty, compute_cost + royalty,
       (started_at AT TIME ZONE 'UTC')::date,
       ended_at + make_interval(secs => 0.002 + r_created * 0.02)
FROM r ORDER BY g
"""


def _structure() -> tuple[list, list, str | None]:
    """The record table's secondary indexes, foreign keys and primary key, as statements
    that recreate them exactly."""
    indexes = sql_all(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'billing_usagerecord'::regclass AND NOT i.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
    )
    constraints = sql_all(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'billing_usagerecord'::regclass AND contype IN ('f', 'p', 'u')"
    )
    (referenced,) = sql_one(
        "SELECT count(*) FROM pg_constraint WHERE confrelid = 'billing_usagerecord'::regclass"
    )
    others = [(n, d) for n, t, d in constraints if t != "p"]
    primary = next((f"{n}\t{d}" for n, t, d in constraints if t == "p"), None)
    return indexes, others, (None if referenced else primary)


def records(dataset: Dataset, mode: str) -> None:
    """`dataset.size` usage records over the dataset's days, in time order."""
    from django.conf import settings

    size = dataset.size
    t0 = datetime.combine(dataset.first_day, datetime.min.time(), UTC)
    span = (dataset.last_day - dataset.first_day + timedelta(days=1)).total_seconds()
    params = {
        "t0": t0,
        "step": span / size,
        "buckets": BUCKETS,
        "session_share": SESSION_SHARE,
        "header_share": HEADER_PROJECT_SHARE,
        "explore_share": EXPLORE_SHARE,
        "slots": FAVOURITE_SLOTS,
        "increment": settings.BILLING_SECONDS_INCREMENT,
        "minimum": settings.BILLING_MINIMUM_SECONDS,
    }
    dropped_indexes, dropped_constraints, primary = [], [], None
    began = time.perf_counter()
    if mode == "bulk":
        dropped_indexes, dropped_constraints, primary = _structure()
        for name, _ in dropped_constraints:
            sql_run(f'ALTER TABLE billing_usagerecord DROP CONSTRAINT "{name}"')
        if primary:
            sql_run(f'ALTER TABLE billing_usagerecord DROP CONSTRAINT "{primary.split()[0]}"')
        for name, _ in dropped_indexes:
            sql_run(f'DROP INDEX "{name}"')
    for a in range(0, size, CHUNK):
        b = min(size, a + CHUNK)
        chunk_began = time.perf_counter()
        sql_run(INSERT_RECORDS, {**params, "a": a, "b": b})
        elapsed = time.perf_counter() - chunk_began
        if size > CHUNK:
            print(
                f"  records {b:>10,}/{size:,}: chunk {elapsed:5.1f} s "
                f"({(b - a) / elapsed:,.0f}/s), {time.perf_counter() - began:6.1f} s in all",
                flush=True,
            )
    inserted = time.perf_counter()
    dataset.timings["insert"] = inserted - began
    if mode == "bulk":
        sql_run("SET maintenance_work_mem = '1GB'")
        if primary:
            name, definition = primary.split("\t")
            sql_run(f'ALTER TABLE billing_usagerecord ADD CONSTRAINT "{name}" {definition}')
        for _, definition in dropped_indexes:
            sql_run(definition)
        indexed = time.perf_counter()
        for name, definition in dropped_constraints:
            # Validated over every row here: a bad reference fails the benchmark.
            sql_run(f'ALTER TABLE billing_usagerecord ADD CONSTRAINT "{name}" {definition}')
        sql_run("RESET maintenance_work_mem")
        dataset.timings["indexes"] = indexed - inserted
        dataset.timings["constraints"] = time.perf_counter() - indexed
    began = time.perf_counter()
    sql_run("VACUUM ANALYZE billing_usagerecord")
    for table in ("accounts_team", "accounts_user", "accounts_apikey", "catalog_model"):
        sql_run(f"ANALYZE {table}")
    dataset.timings["vacuum_analyze"] = time.perf_counter() - began
    sql_run("DROP TABLE bench_team, bench_model, bench_pick")


def generate(size: int, seed: int, mode: str) -> Dataset:
    from marketplace.accounts.models import Team

    rng = random.Random(seed * 1_000_003 + size)
    today = datetime.now(UTC).date()
    last_day = today - timedelta(days=2)  # closed whatever the hour (rollups.CLOSED_AFTER)
    first_day = last_day - timedelta(days=DAYS - 1)
    month_end = last_day.replace(day=1) - timedelta(days=1)
    if last_day.month != (last_day + timedelta(days=1)).month:
        month_end = last_day
    month_start = month_end.replace(day=1)
    dataset = Dataset(size, first_day, last_day, month_start, month_end)
    began = time.perf_counter()
    dimensions(rng, first_day)
    dataset.timings["dimensions"] = time.perf_counter() - began
    records(dataset, mode)

    by_team = sql_all(
        "SELECT team_id, count(*) FROM billing_usagerecord GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    )
    by_owner = sql_all(
        "SELECT model_owner_id, count(*) FROM billing_usagerecord GROUP BY 1 "
        "ORDER BY 2 DESC LIMIT 1"
    )
    dataset.team = Team.objects.get(pk=by_team[0][0])
    dataset.owner = Team.objects.get(pk=by_owner[0][0])
    dataset.team_share = by_team[0][1] / size
    dataset.owner_share = by_owner[0][1] / size
    window = [dataset.month_start, dataset.month_end]
    (dataset.month_records,) = sql_one(
        "SELECT count(*) FROM billing_usagerecord WHERE team_id = %s AND day BETWEEN %s AND %s",
        [dataset.team.pk, *window],
    )
    (dataset.owner_month_records,) = sql_one(
        "SELECT count(*) FROM billing_usagerecord "
        "WHERE model_owner_id = %s AND day BETWEEN %s AND %s",
        [dataset.owner.pk, *window],
    )
    # Baseline keys: a spread of records, fetched by primary key during the measurement.
    dataset.pks = [
        row[0]
        for row in sql_all(
            "SELECT request_id FROM billing_usagerecord TABLESAMPLE SYSTEM (1) LIMIT 2000"
        )
    ]
    rng.shuffle(dataset.pks)
    return dataset


# -- rollups ------------------------------------------------------------------------------


def roll_up(dataset: Dataset) -> dict:
    """Every closed day rolled up through `rollup_closed_days`, as the periodic task does
    (a whole day for every team at once), timed: the whole, and the part spent in
    rollup_whole_day (the rest is finding the days to roll up)."""
    from billing import rollups

    original = rollups.rollup_whole_day
    spent = [0.0]

    def timed(**kwargs):
        began = time.perf_counter()
        try:
            return original(**kwargs)
        finally:
            spent[0] += time.perf_counter() - began

    rollups.rollup_whole_day = timed
    batches, pairs = 0, 0
    began = time.perf_counter()
    try:
        while True:
            done = rollups.rollup_closed_days(since=dataset.first_day)
            if not done:
                break
            batches += 1
            pairs += done
    finally:
        rollups.rollup_whole_day = original
    total = time.perf_counter() - began
    # For comparison, the same sums for every (team, day) at once, set-based (into a scratch
    # table, not read by anything): what a rollup per closed day for all teams would cost.
    columns = ", ".join(rollups.GROUP_COLUMNS)
    set_began = time.perf_counter()
    sql_run(
        f"""
        CREATE TEMP TABLE bench_set_rollup AS
        SELECT team_id, day, {columns}, count(*) AS calls,
               count(*) FILTER (WHERE billed) AS billed_calls,
               sum(duration_seconds) AS duration_seconds, sum(billed_seconds) AS billed_seconds,
               sum(compute_cost) AS compute_cost, sum(royalty) AS royalty, sum(total) AS total
        FROM billing_usagerecord WHERE day BETWEEN %s AND %s
        GROUP BY team_id, day, {columns}
        """,  # noqa: S608 - column names are constants
        [dataset.first_day, dataset.last_day],
    )
    set_based = time.perf_counter() - set_began
    (set_rows,) = sql_one("SELECT count(*) FROM bench_set_rollup")
    sql_run("DROP TABLE bench_set_rollup")
    analyze_began = time.perf_counter()
    sql_run("ANALYZE billing_usagerollup")
    sql_run("ANALYZE billing_rolledupday")
    (rows,) = sql_one("SELECT count(*) FROM billing_usagerollup")
    (month_rows,) = sql_one(
        "SELECT count(*) FROM billing_usagerollup WHERE team_id = %s AND day BETWEEN %s AND %s",
        [dataset.team.pk, dataset.month_start, dataset.month_end],
    )
    return {
        "seconds": total,
        "rollup_day_seconds": spent[0],
        "batches": batches,
        "pairs": pairs,
        "rows": rows,
        "month_rows": month_rows,
        "analyze": time.perf_counter() - analyze_began,
        "set_based_seconds": set_based,
        "set_based_rows": set_rows,
    }


# -- measurement --------------------------------------------------------------------------


@dataclass
class Kind:
    name: str
    scope: str  # baseline, team, owner
    group_by: str | None
    rollups: bool | None
    run: object  # callable(i) -> number of result rows


def kinds(dataset: Dataset) -> list[Kind]:
    from billing.models import UsageRecord
    from billing.reports import usage_report

    window = {"start": dataset.month_start, "end": dataset.month_end}

    def report(scope, group_by, use_rollups):
        who = {"team": dataset.team} if scope == "team" else {"owner": dataset.owner}

        def run(_i):
            return len(
                usage_report(**window, **who, group_by=group_by, use_rollups=use_rollups).rows
            )

        return run

    def baseline(i):
        pk = dataset.pks[i % len(dataset.pks)]
        return len(list(UsageRecord.objects.filter(pk=pk).values_list("total", flat=True)))

    found = [Kind("baseline", "baseline", None, None, baseline)]
    for scope, groupings in (("team", GROUPINGS), ("owner", OWNER_GROUPINGS)):
        for group_by in groupings:
            for use_rollups in (False, True):
                name = f"{scope} {group_by or 'totals'} {'rollups' if use_rollups else 'raw'}"
                found.append(
                    Kind(name, scope, group_by, use_rollups, report(scope, group_by, use_rollups))
                )
    return found


def measure(all_kinds: list[Kind], repeat: int, rng: random.Random) -> dict:
    """Every kind `repeat` times, in a fresh random order each round, with a baseline call
    before each report (so the baseline sees the same cache and load conditions)."""
    samples: dict[str, list[float]] = {k.name: [] for k in all_kinds}
    rows: dict[str, int] = {}
    baseline, reports = all_kinds[0], all_kinds[1:]
    for kind in all_kinds:  # warm-up: plans, caches, the connection
        kind.run(0)
    calls = 0
    for _ in range(repeat):
        order = reports[:]
        rng.shuffle(order)
        for kind in order:
            began = time.perf_counter()
            baseline.run(calls)
            samples[baseline.name].append((time.perf_counter() - began) * 1000)
            calls += 1
            began = time.perf_counter()
            rows[kind.name] = kind.run(calls)
            samples[kind.name].append((time.perf_counter() - began) * 1000)
    return {"samples": samples, "rows": rows}


@contextlib.contextmanager
def late_record(dataset: Dataset):
    """A copy of one of the team's mid-month records, created now: a call that finished (or
    was reaped) after its day was rolled up. Removed afterwards."""
    columns = [
        c
        for (c,) in sql_all(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'billing_usagerecord' AND column_name NOT IN "
            "('request_id', 'created_at') ORDER BY ordinal_position"
        )
    ]
    listed = ", ".join(columns)
    (request_id,) = sql_one(
        f"INSERT INTO billing_usagerecord (request_id, created_at, {listed}) "  # noqa: S608
        f"SELECT gen_random_uuid(), now(), {listed} FROM billing_usagerecord "
        "WHERE team_id = %s AND day = %s AND billed LIMIT 1 RETURNING request_id",
        [dataset.team.pk, dataset.month_start + timedelta(days=14)],
    )
    try:
        yield request_id
    finally:
        sql_run("DELETE FROM billing_usagerecord WHERE request_id = %s", [request_id])


def verify(dataset: Dataset) -> list[str]:
    """Rollup and raw reports identical, row by row and to the last Decimal place; raw
    totals equal to an independent ORM sum."""
    from django.db.models import Count, Sum

    from billing.models import UsageRecord
    from billing.reports import usage_report

    window = {"start": dataset.month_start, "end": dataset.month_end}
    lines = []
    for scope, groupings in (("team", (*GROUPINGS, "status")), ("owner", OWNER_GROUPINGS)):
        who = {"team": dataset.team} if scope == "team" else {"owner": dataset.owner}
        for group_by in groupings:
            raw = usage_report(**window, **who, group_by=group_by, use_rollups=False)
            rolled = usage_report(**window, **who, group_by=group_by, use_rollups=True)
            same_totals = raw.totals.as_dict() == rolled.totals.as_dict()
            same_rows = [(r.key, r.label, r.as_dict()) for r in raw.rows] == [
                (r.key, r.label, r.as_dict()) for r in rolled.rows
            ]
            lines.append(
                f"{scope} {group_by or 'totals':<8} {len(raw.rows):>5} rows: "
                f"{'identical' if same_totals and same_rows else 'DIFFERENT'}"
                + ("" if same_totals else f" (totals raw {raw.totals} rollups {rolled.totals})")
                + ("" if same_rows else " (rows differ)")
            )
    column = {"team": dataset.team}
    independent = UsageRecord.objects.filter(
        **column, day__gte=dataset.month_start, day__lte=dataset.month_end
    ).aggregate(
        calls=Count("pk"), total=Sum("total"), compute=Sum("compute_cost"), royalty=Sum("royalty")
    )
    raw = usage_report(**window, **column, use_rollups=False).totals
    rolled = usage_report(**window, **column, use_rollups=True).totals
    agree = (
        raw.calls == rolled.calls == independent["calls"]
        and raw.total == rolled.total == independent["total"]
        and raw.compute_cost == rolled.compute_cost == independent["compute"]
        and raw.royalties == rolled.royalties == independent["royalty"]
    )
    with late_record(dataset):
        late = []
        for group_by in (None, "day", "version"):
            raw_late = usage_report(**window, **column, group_by=group_by, use_rollups=False)
            rolled_late = usage_report(**window, **column, group_by=group_by, use_rollups=True)
            late.append(
                f"{group_by or 'totals'} "
                + (
                    "identical"
                    if _report_measures(raw_late) == _report_measures(rolled_late)
                    and raw_late.totals.as_dict() == rolled_late.totals.as_dict()
                    and raw_late.totals.calls == raw.calls + 1
                    else "DIFFERENT"
                )
            )
    lines.append("with one late record (created after its day's rollup): " + ", ".join(late))
    lines.append(
        f"team totals vs independent ORM sum: {'equal' if agree else 'NOT EQUAL'} "
        f"(calls {independent['calls']:,}, total {independent['total']}, "
        f"compute {independent['compute']}, royalties {independent['royalty']}; "
        f"raw {raw.total}, rollups {rolled.total})"
    )
    return lines


def summarise(size: int, all_kinds: list[Kind], measured: dict) -> list[dict]:
    samples = measured["samples"]
    base = percentile(samples["baseline"], 50)
    table = [
        {
            "size": size,
            "report": "baseline: record by pk",
            "rows": 1,
            "raw": (base, percentile(samples["baseline"], 95), 1.0),
            "rollups": None,
        }
    ]
    for kind in all_kinds[1:]:
        if kind.rollups:
            continue
        twin = f"{kind.scope} {kind.group_by or 'totals'} rollups"

        def stats(name):
            times = samples[name]
            return (percentile(times, 50), percentile(times, 95), percentile(times, 50) / base)

        table.append(
            {
                "size": size,
                "report": f"{kind.scope} {kind.group_by or 'totals'}",
                "rows": measured["rows"][kind.name],
                "raw": stats(kind.name),
                "rollups": stats(twin),
            }
        )
    return table


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'records':>10}  {'report':<22} {'rows':>5}  {'raw p50':>9} {'raw p95':>9} "
        f"{'x base':>7}  {'rollup p50':>10} {'rollup p95':>10} {'x base':>7}  {'rollup/raw':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        raw = r["raw"]
        line = (
            f"{r['size']:>10,}  {r['report']:<22} {r['rows']:>5}  {raw[0]:>9.2f} {raw[1]:>9.2f} "
            f"{raw[2]:>6.1f}x"
        )
        if r["rollups"]:
            rolled = r["rollups"]
            line += (
                f"  {rolled[0]:>10.2f} {rolled[1]:>10.2f} {rolled[2]:>6.1f}x"
                f"  {rolled[0] / raw[0]:>9.2f}x"
            )
        print(line)
    print("(times in ms; x base = p50 / the baseline's p50; rollup/raw = rollup p50 / raw p50)")


# -- plans --------------------------------------------------------------------------------


def explain(dataset: Dataset) -> None:
    from django.db import connection

    from billing.reports import usage_report

    window = {"start": dataset.month_start, "end": dataset.month_end}
    cases = (
        ("raw monthly team totals (use_rollups=False)", {"team": dataset.team}, False),
        ("rollup monthly team totals (use_rollups=True)", {"team": dataset.team}, True),
        ("raw monthly owner totals (use_rollups=False)", {"owner": dataset.owner}, False),
        ("rollup monthly owner totals (use_rollups=True)", {"owner": dataset.owner}, True),
    )
    for title, who, use_rollups in cases:
        captured = []

        def capture(execute, sql, params, many, context, captured=captured):
            captured.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            usage_report(**window, **who, use_rollups=use_rollups)
        sql, params = captured[0]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\n-- {title}, {dataset.size:,} records")
        print(" ".join(connection.ops.compose_sql(sql, params).split()))
        print(plan)


# -- what if ------------------------------------------------------------------------------

WHAT_IF_INDEX = "bench_what_if_team_day_created"
WHAT_IF_GROUPINGS = (None, "model", "version", "day")


def clean_days(dataset: Dataset) -> tuple[list, list]:
    """(days to read from rollups, days to read from records) of the team's month: a day is
    read from its rollups when it was rolled up and none of its records was created after
    the rollup's cutoff. The check is max(created_at) per day, which PostgreSQL answers
    with one backward index-only probe of (team_id, day, created_at) whatever its estimates."""
    from billing.models import RolledUpDay

    start, end = dataset.month_start, dataset.month_end
    rolled = dict(
        RolledUpDay.objects.filter(team=dataset.team, day__range=(start, end)).values_list(
            "day", "rolled_up_at"
        )
    )
    days = list(rolled)
    clean = {
        day
        for (day,) in sql_all(
            """
            SELECT d.day FROM unnest(%s::date[], %s::timestamptz[]) AS d(day, cutoff)
            WHERE coalesce((SELECT max(r.created_at) FROM billing_usagerecord r
                            WHERE r.team_id = %s AND r.day = d.day), '-infinity') <= d.cutoff
            """,
            [days, [rolled[d] for d in days], dataset.team.pk],
        )
    }
    every = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return sorted(clean), [d for d in every if d not in clean]


def what_if_report(dataset: Dataset, group_by: str | None) -> dict:
    """The team's monthly report as the rollup path could read it (a sketch for
    billing/reports.py, not the application's code): clean rolled-up days (`clean_days`)
    from their rollup rows only, the other days from their records, found by day through
    the (team_id, day[, created_at]) index. Returns {key: measures}."""
    from billing.models import ERROR_STATUSES
    from billing.reports import DIMENSIONS

    dims = DIMENSIONS[group_by] if group_by else ()
    from_rollups, from_records = clean_days(dataset)
    errors = ", ".join(f"'{s}'" for s in ERROR_STATUSES)
    dim_r = "".join(f"r.{d}, " for d in dims)
    dim_u = "".join(f"u.{d}, " for d in dims)
    dim_s = ", ".join(dims)
    sql = f"""
        SELECT {dim_s + ", " if dims else ""}sum(calls), sum(billed_calls), sum(errors),
               sum(rejected), sum(billed_seconds), sum(compute_cost), sum(royalty), sum(total)
        FROM (
            SELECT {dim_r}1 AS calls, CASE WHEN r.billed THEN 1 ELSE 0 END AS billed_calls,
                   CASE WHEN r.status IN ({errors}) THEN 1 ELSE 0 END AS errors,
                   CASE WHEN r.status = 'rejected' THEN 1 ELSE 0 END AS rejected,
                   r.billed_seconds, r.compute_cost, r.royalty, r.total
            FROM billing_usagerecord r
            WHERE r.team_id = %s AND r.day = ANY(%s::date[])
            UNION ALL
            SELECT {dim_u}u.calls, u.billed_calls,
                   CASE WHEN u.status IN ({errors}) THEN u.calls ELSE 0 END,
                   CASE WHEN u.status = 'rejected' THEN u.calls ELSE 0 END,
                   u.billed_seconds, u.compute_cost, u.royalty, u.total
            FROM billing_usagerollup u
            WHERE u.team_id = %s AND u.day = ANY(%s::date[])
        ) AS src
        {"GROUP BY " + dim_s if dims else ""}
    """  # noqa: S608 - only constants are interpolated
    team = dataset.team.pk
    rows = sql_all(sql, [team, from_records, team, from_rollups])
    return {tuple(row[: len(dims)]): tuple(row[len(dims) :]) for row in rows if row[len(dims)]}


def _report_measures(report) -> dict:
    return {
        row.key: (
            row.calls,
            row.billed_calls,
            row.errors,
            row.rejected,
            row.compute_seconds,
            row.compute_cost,
            row.royalties,
            row.total,
        )
        for row in report.rows
    }


def what_if(dataset: Dataset, repeat: int, rng: random.Random) -> None:
    """Measure what_if_report against the application's raw and rollup reports, in the same
    interleaved loop, with the index it needs created for the occasion (and dropped)."""
    from billing.reports import usage_report

    began = time.perf_counter()
    sql_run(f"CREATE INDEX {WHAT_IF_INDEX} ON billing_usagerecord (team_id, day, created_at)")
    built = time.perf_counter() - began
    print(
        f"\n== what if: rolled-up days read without their records "
        f"(index (team_id, day, created_at) built in {built:.1f} s) =="
    )
    window = {"start": dataset.month_start, "end": dataset.month_end, "team": dataset.team}
    try:
        checks = []
        for group_by in WHAT_IF_GROUPINGS:
            expected = _report_measures(usage_report(**window, group_by=group_by))
            got = what_if_report(dataset, group_by)
            same = set(expected) == set(got) and all(
                tuple(Decimal(v) for v in got[k]) == tuple(Decimal(v) for v in expected[k])
                for k in expected
            )
            checks.append(f"{group_by or 'totals'} {'identical' if same else 'DIFFERENT'}")
        with late_record(dataset):
            expected = _report_measures(usage_report(**window, group_by="day"))
            got = what_if_report(dataset, "day")
            same = set(expected) == set(got) and all(
                tuple(Decimal(v) for v in got[k]) == tuple(Decimal(v) for v in expected[k])
                for k in expected
            )
            checks.append(f"day with a late record {'identical' if same else 'DIFFERENT'}")
        print("what-if report == application's report: " + ", ".join(checks))
        found = [Kind("baseline", "baseline", None, None, kinds(dataset)[0].run)]
        for group_by in WHAT_IF_GROUPINGS:
            label = group_by or "totals"
            for use_rollups in (False, True):
                found.append(
                    Kind(
                        f"{label} {'rollups' if use_rollups else 'raw'}",
                        "team",
                        group_by,
                        use_rollups,
                        lambda _i, g=group_by, u=use_rollups: len(
                            usage_report(**window, group_by=g, use_rollups=u).rows
                        ),
                    )
                )
            found.append(
                Kind(
                    f"{label} what-if",
                    "team",
                    group_by,
                    True,
                    lambda _i, g=group_by: len(what_if_report(dataset, g)),
                )
            )
        samples = measure(found, repeat, rng)["samples"]
        base = percentile(samples["baseline"], 50)
        header = (
            f"{'team report':<12} {'raw p50':>9} {'rollup p50':>10} {'what-if p50':>11} "
            f"{'what-if p95':>11} {'x base':>7} {'what-if/raw':>11} {'what-if/rollup':>14}"
        )
        print(f"baseline p50 {base:.2f} ms\n{header}\n{'-' * len(header)}")
        for group_by in WHAT_IF_GROUPINGS:
            label = group_by or "totals"
            raw = percentile(samples[f"{label} raw"], 50)
            rolled = percentile(samples[f"{label} rollups"], 50)
            better = percentile(samples[f"{label} what-if"], 50)
            print(
                f"{label:<12} {raw:>9.2f} {rolled:>10.2f} {better:>11.2f} "
                f"{percentile(samples[f'{label} what-if'], 95):>11.2f} {better / base:>6.1f}x "
                f"{better / raw:>10.2f}x {better / rolled:>13.2f}x"
            )
        print("(times in ms)")
        captured = what_if_plan(dataset)
        print(f"\n-- what-if team totals, {dataset.size:,} records\n{captured}")
    finally:
        sql_run(f"DROP INDEX IF EXISTS {WHAT_IF_INDEX}")


def what_if_plan(dataset: Dataset) -> str:
    from django.db import connection

    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        what_if_report(dataset, None)
    plans = []
    for sql, params in captured[1:]:  # the RolledUpDay lookup is a plain ORM query
        rows = sql_all("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plans.append("\n".join(row[0] for row in rows))
    return "\n\n".join(plans)


def sizes_of_tables() -> str:
    rows = sql_all(
        "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) FROM pg_class c "
        "WHERE c.relname LIKE 'billing_usa%' AND c.relkind IN ('r', 'i') "
        "ORDER BY pg_relation_size(c.oid) DESC"
    )
    return ", ".join(f"{name} {size}" for name, size in rows)


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1000000,10000000", help="record counts, comma-separated"
    )
    parser.add_argument("--repeat", type=int, default=20, help="measurements per report kind")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--database", default="bench_usage", help="name of the bench database")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--load",
        choices=("bulk", "indexed"),
        default="bulk",
        help="bulk: recreate indexes and constraints after loading; indexed: load into them",
    )
    parser.add_argument(
        "--no-what-if",
        dest="what_if",
        action="store_false",
        help="skip the what-if measurement of a rollup path that skips rolled-up records",
    )
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]

    database = bootstrap(args.database)
    try:
        settings_rows = sql_all(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', "
            "'work_mem', 'effective_cache_size', 'max_parallel_workers_per_gather', "
            "'random_page_cost', 'jit')"
        )
        (version,) = sql_one("SHOW server_version")
        print(
            f"PostgreSQL {version}; "
            + ", ".join(f"{n}={s}{u or ''}" for n, s, u in settings_rows)
            + f"; {os.cpu_count()} CPUs"
        )
        table, generation, rollup_stats, checks = [], [], [], []
        for size in sizes:
            print(f"\n== {size:,} records ==", flush=True)
            began = time.perf_counter()
            dataset = generate(size, args.seed, args.load)
            total = time.perf_counter() - began
            generation.append((size, total, dataset.timings))
            t = dataset.timings
            print(
                f"generated in {total:.1f} s (dimensions {t['dimensions']:.1f} s, "
                f"INSERT ... SELECT {t['insert']:.1f} s"
                + (
                    f", indexes {t['indexes']:.1f} s, constraints {t['constraints']:.1f} s"
                    if "indexes" in t
                    else ""
                )
                + f", VACUUM ANALYZE {t['vacuum_analyze']:.1f} s)"
            )
            print(f"sizes: {sizes_of_tables()}")
            print(
                f"days {dataset.first_day}..{dataset.last_day}; report month "
                f"{dataset.month_start}..{dataset.month_end}; team {dataset.team.slug} makes "
                f"{dataset.team_share:.1%} of all records ({dataset.month_records:,} in the "
                f"month); owner {dataset.owner.slug} earns on {dataset.owner_share:.1%} "
                f"({dataset.owner_month_records:,} in the month)",
                flush=True,
            )
            stats = roll_up(dataset)
            rollup_stats.append((size, stats))
            print(
                f"rollup_closed_days: {stats['pairs']:,} days in "
                f"{stats['batches']} runs, {stats['seconds']:.1f} s "
                f"(rollup_whole_day {stats['rollup_day_seconds']:.1f} s, finding the days "
                f"{stats['seconds'] - stats['rollup_day_seconds']:.1f} s); "
                f"{stats['rows']:,} rollup rows ({size / max(1, stats['rows']):.1f} records "
                f"per row); the team's month: {stats['month_rows']:,} rollup rows for "
                f"{dataset.month_records:,} records; ANALYZE {stats['analyze']:.1f} s; "
                f"the same sums set-based in one statement: {stats['set_based_seconds']:.1f} s "
                f"({stats['set_based_rows']:,} rows)",
                flush=True,
            )
            lines = verify(dataset)
            checks.append((size, lines))
            for line in lines:
                print(f"  {line}")
            all_kinds = kinds(dataset)
            rng = random.Random(args.seed + size)
            began, load = time.perf_counter(), os.getloadavg()[0]
            measured = measure(all_kinds, args.repeat, rng)
            print(
                f"measured {args.repeat} rounds of {len(all_kinds) - 1} reports in "
                f"{time.perf_counter() - began:.1f} s (load average {load:.1f} before, "
                f"{os.getloadavg()[0]:.1f} after)\n"
            )
            rows = summarise(size, all_kinds, measured)
            table.extend(rows)
            print_table(rows)
            if size == max(sizes):
                explain(dataset)
                if args.what_if:
                    what_if(dataset, args.repeat, rng)

        print("\n== generation ==")
        for size, total, t in generation:
            print(
                f"{size:>10,} records: {total:.1f} s (insert {t['insert']:.1f} s"
                + (f", indexes {t['indexes']:.1f} s" if "indexes" in t else "")
                + (f", constraints {t['constraints']:.1f} s" if "constraints" in t else "")
                + f", vacuum analyze {t['vacuum_analyze']:.1f} s)"
            )
        print("\n== rollups (rollup_closed_days over all closed days) ==")
        for size, s in rollup_stats:
            print(
                f"{size:>10,} records: {s['seconds']:.1f} s for {s['pairs']:,} days "
                f"in {s['batches']} runs (rollup_whole_day {s['rollup_day_seconds']:.1f} s, "
                f"finding days {s['seconds'] - s['rollup_day_seconds']:.1f} s), "
                f"{s['rows']:,} rows; set-based in one statement {s['set_based_seconds']:.1f} s"
            )
        print("\n== rollups == raw ==")
        for size, lines in checks:
            for line in lines:
                print(f"{size:>10,}  {line}")
        print("\n== monthly report latency (baseline: one usage record by primary key) ==")
        print_table(table)
    finally:
        finish(database, args.keep)


if __name__ == "__main__":
    main()
