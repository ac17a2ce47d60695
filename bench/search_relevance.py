"""Search relevance on a catalogue of real one-line package summaries, the shape of issue 16:
6,000 public models (name + tagline, one version each), 300 queries of three distinctive
words of a model's tagline ("exact"), the same 300 with one letter dropped from one word of
4+ letters ("typo"), and hand-written queries that say what a model does in other words
("meaning": they can only pass once search understands meaning, see issue 16).

    .venv/bin/python bench/search_relevance.py
    .venv/bin/python bench/search_relevance.py --misses /tmp/misses.txt   # what went wrong

The suite is tests/catalog/search/relevance/ (catalogue.tsv, queries.tsv from make_suite.py,
meaning.tsv by hand). The catalogue goes in through the product's models with bulk_create
(one team, models, a succeeded build and a public version each), then `manage.py
search_reindex` rebuilds every derived search structure, as after any bulk import. Each
query runs through `catalog.search.search` on the PostgreSQL engine as an anonymous visitor,
sorted by relevance; the answer counts when the expected model is among the first 1, 3, 5.

Database: as bench/search_latency.py (bench/_database.py): a private embedded PostgreSQL
unless DATABASE_URL is set; its own database `bench_relevance`, dropped at the end unless
--keep."""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _database import bootstrap, finish
from _platform import percentile

SUITE = Path(__file__).resolve().parents[1] / "tests" / "catalog" / "search" / "relevance"
KINDS = ("exact", "typo", "meaning")


def read_suite():
    catalogue = [
        line.rstrip("\n").split("\t")
        for line in (SUITE / "catalogue.tsv").read_text(encoding="utf-8").splitlines()
    ]
    queries = []
    for name in ("queries.tsv", "meaning.tsv"):
        for line in (SUITE / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                kind, text, expected = line.split("\t")
                queries.append((kind, text, expected))
    return catalogue, queries


def load(catalogue) -> None:
    """The catalogue through the product's models, in bulk, then the product's own rebuild of
    every derived search structure."""
    from django.core.management import CommandError, call_command
    from django.db import connection, transaction

    from catalog.models import Build, BuildStatus, Model, Version, Visibility
    from marketplace.accounts.models import Team

    began = time.perf_counter()
    with transaction.atomic():
        team = Team.objects.create(slug="pypi", name="PyPI summaries")
        models = Model.objects.bulk_create(
            Model(
                owner=team,
                slug=name,
                title=name.replace("-", " ").replace("_", " "),
                tagline=tagline,
                runtime="python",
                visibility=Visibility.PUBLIC,
            )
            for name, tagline in catalogue
        )
        builds = Build.objects.bulk_create(
            Build(
                model=model,
                package_hash=hashlib.sha256(model.slug.encode()).hexdigest(),
                status=BuildStatus.SUCCEEDED,
                runtime="python",
                manifest={"name": model.slug, "runtime": "python"},
            )
            for model in models
        )
        Version.objects.bulk_create(
            Version(
                model=build.model,
                build=build,
                major=1,
                minor=0,
                patch=0,
                visibility=Visibility.PUBLIC,
            )
            for build in builds
        )
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    try:
        call_command("search_reindex", verbosity=0)
    except CommandError as exc:  # before it rebuilt the PostgreSQL structures too
        print(f"search_reindex: {exc}")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # statistics of the new rows for the planner
    print(
        f"{len(models)} models loaded in {loaded:.1f} s; "
        f"search_reindex in {time.perf_counter() - began:.1f} s"
    )


def run(queries, misses_path: str | None):
    from catalog.search import CatalogQuery, search

    ranks: dict[str, list[int | None]] = {kind: [] for kind in KINDS}
    empty: dict[str, int] = dict.fromkeys(KINDS, 0)
    corrected: dict[str, int] = dict.fromkeys(KINDS, 0)
    durations: list[float] = []
    misses = []
    for kind, text, expected in queries:
        began = time.perf_counter()
        found = search(None, CatalogQuery(text=text, page_size=5, facets=()))
        durations.append(time.perf_counter() - began)
        names = [m.slug for m in found.models]
        rank = names.index(expected) + 1 if expected in names else None
        ranks[kind].append(rank)
        empty[kind] += not found.count
        corrected[kind] += bool(getattr(found, "corrected_query", None))
        if rank != 1:
            misses.append(
                f"{kind}\t{text}\t{expected}\trank={rank}\tcount={found.count}\t"
                f"corrected={getattr(found, 'corrected_query', None)}\t{' '.join(names)}"
            )
    if misses_path:
        Path(misses_path).write_text("\n".join(misses) + "\n", encoding="utf-8")
    return ranks, empty, corrected, durations


def table(ranks, empty, corrected, durations) -> str:
    lines = [
        "| queries | n | top-1 | top-3 | top-5 | no result at all | corrected |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = {
        "exact": "exact words",
        "typo": "one letter dropped",
        "meaning": "meaning (needs embeddings)",
    }
    for kind in KINDS:
        found = ranks[kind]
        if not found:
            continue
        n = len(found)
        share = [sum(1 for r in found if r is not None and r <= k) / n for k in (1, 3, 5)]
        lines.append(
            f"| {labels[kind]} | {n} | {share[0]:.3f} | {share[1]:.3f} | {share[2]:.3f} "
            f"| {empty[kind]} of {n} | {corrected[kind]} |"
        )
    ms = [d * 1000 for d in durations]
    lines.append(
        f"\nlatency over {len(ms)} searches: p50 {percentile(ms, 50):.1f} ms, "
        f"p95 {percentile(ms, 95):.1f} ms, mean {statistics.fmean(ms):.1f} ms"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="bench_relevance")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--misses", help="write every query not answered first to this file")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="search the catalogue a --keep run left (DATABASE_URL: its server) instead of "
        "loading it again, e.g. to compare a change of the ranking",
    )
    args = parser.parse_args()
    catalogue, queries = read_suite()
    database = bootstrap(args.database, reuse=args.reuse)
    try:
        from django.conf import settings

        settings.ELASTICSEARCH_URL = ""  # the PostgreSQL engine, whatever the environment says
        from catalog.models import Model

        if args.reuse and Model.objects.count() == len(catalogue):
            print(f"{len(catalogue)} models of a kept run reused")
        else:
            load(catalogue)
        # One warm-up pass of the statements' plans and caches, not measured.
        run(queries[:20], None)
        print(table(*run(queries, args.misses)))
    finally:
        finish(database, args.keep)


if __name__ == "__main__":
    main()
