"""A team's call history (`monitoring.call_history.team_calls`, the Calls page and
GET /v1/teams/{team}/calls) on a team with many calls: the first page, a page deep in the
history (reached by its keyset cursor), and the first page filtered by key, status, model
and refused calls. The baseline, measured in the same loop through the same connection, is
one invocation fetched by primary key; every p50 is printed as a ratio to it, so a page that
grows with the team's size shows as a ratio that grows with --sizes. EXPLAIN (ANALYZE) of the
first page's and the key page's invocation queries is printed at the largest size.

    .venv/bin/python bench/call_history.py [--sizes 100000,1000000] [--repeat 30] [--keep]

Runs on a database of its own (`bench_calls`, dropped at the end unless --keep), on a
private embedded PostgreSQL, or on the server of DATABASE_URL when it is set (its role needs
CREATEDB). Data: one big team that makes 70% of the calls with 20 keys, 50 other teams, 40
models; calls spread over 60 days; 5% failed; one refused-call row per key and minute over
the last day for the big team.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _database import bootstrap, finish
from _platform import percentile


def generate(size: int) -> dict:
    from django.db import connection

    from catalog.models import Build, Model, Version
    from gateway.models import Invocation, RefusedCall
    from marketplace.accounts.models import ApiKey, Team, User

    RefusedCall.objects.all().delete()
    Invocation.objects.all().delete()
    if not Team.objects.filter(slug="big").exists():
        user = User.objects.create(username="bench")
        owner = Team.objects.create(slug="owner", name="Owner")
        big = Team.objects.create(slug="big", name="Big")
        for n in range(50):
            Team.objects.create(slug=f"other-{n}", name=f"Other {n}")
        for n in range(40):
            model = Model.objects.create(
                owner=owner, slug=f"model-{n}", title=f"Model {n}", runtime="python"
            )
            build = Build.objects.create(
                model=model, package_hash=f"{n:064x}", status="succeeded", runtime="python"
            )
            Version.objects.create(
                model=model, build=build, major=1, minor=0, patch=0, visibility="public"
            )
        for n in range(20):
            ApiKey.objects.create(
                team=big,
                created_by=user,
                name=f"key {n}",
                prefix=f"mk_b{n:04d}",
                secret_hash=f"{n:064x}",
            )
    big = Team.objects.get(slug="big")
    keys = list(ApiKey.objects.filter(team=big).values_list("pk", flat=True))
    versions = list(Version.objects.values_list("pk", "model_id", "build_id"))
    others = list(Team.objects.filter(slug__startswith="other-").values_list("pk", flat=True))
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO gateway_invocation (id, model_id, version_id, build_id, version_label,
                caller_team_id, api_key_id, project, status, is_async, backend, hardware_class,
                worker, timeout_seconds, want_stdout, input_content_type, input_bytes,
                input_preview, result_content_type, output_bytes, stdout, cold_start,
                webhook_url, keep_bodies, created_at, started_at, finished_at)
            SELECT gen_random_uuid(), v.model_id, v.id, v.build_id, '1.0.0',
                CASE WHEN random() < 0.7 THEN %(big)s
                     ELSE (%(others)s::bigint[])[1 + floor(random() * %(n_others)s)::int] END,
                NULL, '', CASE WHEN random() < 0.05 THEN 'failed' ELSE 'succeeded' END, false,
                'local', 'cpu', '', 60, false, 'json', 10, '{}', 'json', 10, '', false, '',
                false, t, t, t + interval '50 milliseconds'
            FROM (SELECT now() - random() * interval '60 days' AS t,
                         1 + floor(random() * %(n_versions)s)::int AS pick
                  FROM generate_series(1, %(size)s)) AS calls
            JOIN (SELECT row_number() OVER (ORDER BY id) AS pick, id, model_id, build_id
                  FROM catalog_version) AS v USING (pick)
            """,
            {
                "big": big.pk,
                "others": others,
                "n_others": len(others),
                "n_versions": len(versions),
                "size": size,
            },
        )
        cursor.execute(
            "UPDATE gateway_invocation "
            "SET api_key_id = (%s::uuid[])[1 + floor(random() * %s)::int] "
            "WHERE caller_team_id = %s AND random() < 0.95",
            [[str(k) for k in keys], len(keys), big.pk],
        )
        cursor.execute(
            """
            INSERT INTO gateway_refusedcall (team_id, api_key_id, user_id, subject, reason,
                status_code, message, model_name, version_label, request_id, minute, count,
                first_at, last_at)
            SELECT %(big)s, k, NULL, 'key:' || k, 'RateLimitError', 429, 'rate limit',
                'owner/model-1', '', gen_random_uuid(), m, 3, m, m
            FROM unnest(%(keys)s::uuid[]) AS k,
                 generate_series(date_trunc('minute', now()) - interval '1 day',
                                 date_trunc('minute', now()), interval '1 minute') AS m
            """,
            {"big": big.pk, "keys": [str(k) for k in keys]},
        )
        cursor.execute("VACUUM ANALYZE gateway_invocation")
        cursor.execute("VACUUM ANALYZE gateway_refusedcall")
    print(f"{size:,} calls generated in {time.perf_counter() - began:.1f} s")
    return {"team": big, "key": ApiKey.objects.filter(team=big).first()}


def measure(world: dict, repeat: int) -> dict[str, list[float]]:
    from gateway.models import Invocation
    from monitoring import call_history

    team, key = world["team"], world["key"]
    some_call = Invocation.objects.filter(caller_team=team).values_list("pk", flat=True).first()
    # A cursor 2,000 calls deep: where a user paging back through a day of history gets to.
    deep = None
    page = call_history.team_calls(team, limit=200)
    for _ in range(9):
        page = call_history.team_calls(team, before=page.next_cursor, limit=200)
    deep = page.next_cursor
    cases = {
        "baseline": lambda: Invocation.objects.filter(pk=some_call).first(),
        "first page": lambda: call_history.team_calls(team),
        "2,000 deep": lambda: call_history.team_calls(team, before=deep),
        "one key": lambda: call_history.team_calls(team, call_history.CallFilters(key=key.prefix)),
        "failed": lambda: call_history.team_calls(team, call_history.CallFilters(status="failed")),
        "timed out": lambda: call_history.team_calls(
            team, call_history.CallFilters(status="timeout")
        ),  # there are none: the worst case of a status filter
        "one model": lambda: call_history.team_calls(
            team, call_history.CallFilters(model="owner/model-7")
        ),
        "refused": lambda: call_history.team_calls(
            team, call_history.CallFilters(status="refused")
        ),
    }
    samples = {name: [] for name in cases}
    for _ in range(repeat):
        for name, case in cases.items():
            began = time.perf_counter()
            case()
            samples[name].append((time.perf_counter() - began) * 1000)
    return samples


def explain(world: dict) -> None:
    from django.db import connection

    team, key = world["team"], world["key"]
    for label, where, params in (
        ("first page", "caller_team_id = %s", [team.pk]),
        ("timed out", "caller_team_id = %s AND status = 'timeout'", [team.pk]),
        ("one key", "caller_team_id = %s AND api_key_id = %s", [team.pk, key.pk]),
    ):
        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN (ANALYZE, COSTS OFF) SELECT id FROM gateway_invocation "  # noqa: S608
                f"WHERE {where} ORDER BY created_at DESC, id DESC LIMIT 51",
                params,
            )
            print(f"\nEXPLAIN {label}:")
            for (line,) in cursor.fetchall():
                print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database", default="bench_calls")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    database = bootstrap(args.database)
    try:
        for size in sizes:
            world = generate(size)
            samples = measure(world, args.repeat)
            base = percentile(samples["baseline"], 50)
            print(f"\n{size:,} calls ({world['team'].slug} makes ~70%): p50 ms, ratio to baseline")
            for name, times in samples.items():
                p50 = percentile(times, 50)
                print(
                    f"  {name:<12} {p50:8.2f} ms  p95 {percentile(times, 95):8.2f}  "
                    f"{p50 / base:6.1f}x"
                )
            if size == sizes[-1]:
                explain(world)
    finally:
        finish(database, args.keep)


if __name__ == "__main__":
    main()
