"""Rebuild every derived search structure of the whole catalogue, in batches, with a
progress bar: what a catalogue imported in bulk (`bulk_create`, COPY, a restore with the
triggers off) needs to be searchable the same as one published model by model.

The steps, in order (`STEPS`; `--step NAME` runs only some):

- `vectors`: each model's search vector and trigram text, recomputed by the trigger of
  migration 0007 (`UPDATE ... SET slug = slug`), one batch of ids per statement;
- `dictionary`: the word dictionary typos are corrected against (`catalog_search_word`),
  counted again from every model in batches into a scratch table, under one read snapshot
  that locks nothing a writer waits for; then, in one short transaction that holds the
  dictionary, the counts plus what writes committed meanwhile changed (the dictionary now
  minus the dictionary as of the snapshot: its trigger only ever adds and subtracts) are
  merged into it. Searches and writes go on during the long part;
- `embeddings` (only when SEARCH_SEMANTIC is on): each model's sentence embedding, made
  again where its text changed or it has none, in batches (`embeddings.rebuild_embeddings`,
  also the `search_embeddings` command), then the HNSW index where pgvector is installed.
  A model that cannot be loaded (the encoder's package missing) stops the step with a
  clear error; search keeps answering from text meanwhile;
- `elasticsearch` (only when ELASTICSEARCH_URL is set): the index, rebuilt with no downtime,
  after the embeddings so that documents carry them:

1. install (or refresh) the index template: settings, analyzers, mappings;
2. create a new index named by the time, and stream every model into it in chunks;
3. refresh it, then point the alias at it and away from the old ones in one atomic
   `update_aliases` call: searches use the alias, so they see the old index until that
   instant and the new one after it;
4. delete the old indices;
5. catch up: models written while the new index was being filled may have been written
   to the old index (through the alias) after being read for the new one, so every row is
   compared with what was indexed and the changed, new and deleted ones are written again.
   Dirty flags are cleared before that comparison reads the rows, so a write landing
   during it marks its row dirty again for `index_dirty_models`.

The Elasticsearch step stops with a clear error, leaving the alias untouched, when the
cluster does not answer or any document fails to index; asked for by `--step elasticsearch`
without ELASTICSEARCH_URL, it is an error too."""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from elasticsearch import ApiError, NotFoundError, TransportError, helpers

from catalog.models import Model
from catalog.search import documents, embeddings
from catalog.search.encoder import EncoderUnavailable
from catalog.search.engines import EngineUnavailable
from catalog.search.engines import elasticsearch as engine


def _fingerprint(document: dict) -> bytes:
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).digest()


class Progress:
    """A progress bar on the command's output: `label [#####.....] done/total`."""

    WIDTH = 30

    def __init__(self, stdout, label: str, total: int):
        self.stdout, self.label, self.total, self.done = stdout, label, total, 0
        self.interactive = getattr(stdout, "isatty", lambda: False)()
        self.draw()

    def advance(self, count: int) -> None:
        self.done += count
        if self.interactive or self.done >= self.total:
            self.draw()

    def draw(self) -> None:
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        end = "\n" if self.done >= self.total else ""
        self.stdout.write(f"\r{self.label:<12} [{bar}] {self.done}/{self.total}", ending=end)
        self.stdout.flush()


def _in_parallel(jobs: int, batches, work, progress, *, setup=None) -> None:
    """`work(cursor, ids)` for every batch of ids, on `jobs` connections of their own (each
    in its own thread, closed at the end; `setup(cursor)` first on each); the progress bar
    advances as batches finish. With one job, on this connection."""
    if jobs <= 1:
        with connection.cursor() as cursor:
            if setup:
                setup(cursor)
            for ids in batches:
                work(cursor, ids)
                progress.advance(len(ids))
        return
    pending: queue.Queue = queue.Queue(maxsize=2 * jobs)
    done: queue.Queue = queue.Queue()
    failures: list[BaseException] = []

    def worker():
        try:
            with connections["default"].cursor() as cursor:
                if setup:
                    setup(cursor)
                while (ids := pending.get()) is not None:
                    if not failures:
                        work(cursor, ids)
                    done.put(len(ids))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            while pending.get() is not None:  # drain, so the producer never blocks
                pass
        finally:
            connections["default"].close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for ids in batches:
        if failures:
            break
        pending.put(ids)
        while not done.empty():
            progress.advance(done.get())
    for _ in threads:
        pending.put(None)
    for thread in threads:
        thread.join()
    while not done.empty():
        progress.advance(done.get())
    if failures:
        raise failures[0]


def _batches_of_ids(batch_size: int, rows=None):
    """Every model id (of `rows`), in batches (keyset pagination, so a long run reads each
    row once)."""
    last = None
    while True:
        rows_after = rows if rows is not None else Model.objects.all()
        rows_after = rows_after.order_by("pk")
        if last is not None:
            rows_after = rows_after.filter(pk__gt=last)
        ids = list(rows_after.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        yield ids
        last = ids[-1]


# The dictionary's scratch tables (named in the statements below): its counts as of the
# snapshot, and the new counts.
BEFORE_TABLE = "catalog_search_word_before"
COUNTED_TABLE = "catalog_search_word_counted"

DICTIONARY_BATCH = """
INSERT INTO catalog_search_word_counted (word, scope, model_count)
SELECT word, CASE WHEN visibility = 'public' THEN 0 ELSE owner_id END, count(*)
FROM catalog_model,
     unnest(catalog_search_words(catalog_model_search_body(
         slug, title, tagline, tags, task, framework, readme))) AS word
WHERE id = ANY(%s)
GROUP BY 1, 2
"""

# Counted as of the snapshot, plus what the trigger changed since (now - as of the snapshot).
DICTIONARY_MERGE = """
WITH merged AS (
    SELECT word, scope, sum(model_count) AS model_count FROM (
        SELECT word, scope, model_count FROM catalog_search_word_counted
        UNION ALL SELECT word, scope, model_count FROM catalog_search_word
        UNION ALL SELECT word, scope, -model_count FROM catalog_search_word_before
    ) AS counts
    GROUP BY word, scope
), gone AS (
    DELETE FROM catalog_search_word AS d
    WHERE NOT EXISTS (
        SELECT FROM merged m WHERE m.word = d.word AND m.scope = d.scope AND m.model_count > 0
    )
)
INSERT INTO catalog_search_word (word, scope, model_count)
SELECT word, scope, model_count FROM merged WHERE model_count > 0 ORDER BY word, scope
ON CONFLICT (word, scope) DO UPDATE SET model_count = EXCLUDED.model_count
WHERE catalog_search_word.model_count <> EXCLUDED.model_count
"""


class Command(BaseCommand):
    help = (
        "Rebuild the search vectors, the word dictionary, the embeddings (when SEARCH_SEMANTIC "
        "is on) and (when ELASTICSEARCH_URL is set) the Elasticsearch index of every model, "
        "in batches."
    )
    # Each step NAME is the method step_NAME(chunk_size), run in this order; a new derived
    # structure is one more name and method.
    STEPS = ("vectors", "dictionary", "embeddings", "elasticsearch")

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size", type=int, default=500, help="models per batch or bulk request (500)"
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="database connections working on the vectors and dictionary batches at once "
            "(default 1; up to the database's cores: the work is the server's CPU)",
        )
        parser.add_argument(
            "--missing-only",
            action="store_true",
            help="vectors: only the models that have none yet (to finish an interrupted run "
            "after a load with the triggers off)",
        )
        parser.add_argument(
            "--step",
            action="append",
            choices=self.STEPS,
            help="run only this step (repeatable); default: every step that applies",
        )

    def handle(self, *args, chunk_size: int, step=None, jobs=1, missing_only=False, **options):
        applies = {
            "embeddings": settings.SEARCH_SEMANTIC,
            "elasticsearch": bool(settings.ELASTICSEARCH_URL),
        }
        steps = step or [s for s in self.STEPS if applies.get(s, True)]
        # Inside a caller's transaction (tests), other connections would not see its rows.
        self.jobs = 1 if connection.in_atomic_block else max(1, jobs)
        self.missing_only = missing_only
        for name in self.STEPS:
            if name in steps:
                began = time.perf_counter()
                getattr(self, f"step_{name}")(chunk_size)
                self.stdout.write(f"{name}: {time.perf_counter() - began:.1f} s")

    def step_vectors(self, chunk_size: int) -> None:
        rows = Model.objects.filter(search_vector__isnull=True) if self.missing_only else None
        progress = Progress(
            self.stdout, "vectors", (rows if rows is not None else Model.objects).count()
        )

        def update(cursor, ids):
            # The BEFORE trigger recomputes the vector; no word changes, so the dictionary's
            # AFTER trigger does nothing. Each batch commits on its own (autocommit).
            cursor.execute("UPDATE catalog_model SET slug = slug WHERE id = ANY(%s)", [ids])

        _in_parallel(self.jobs, _batches_of_ids(chunk_size, rows), update, progress)

    def step_dictionary(self, chunk_size: int) -> None:
        with connection.cursor() as cursor:
            for table in (BEFORE_TABLE, COUNTED_TABLE):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
        try:
            self.count_words(chunk_size)
            with transaction.atomic(), connection.cursor() as cursor:
                # Writers of models wait (their trigger needs the table) only for the merge.
                cursor.execute("LOCK TABLE catalog_search_word IN EXCLUSIVE MODE")
                cursor.execute(DICTIONARY_MERGE)
                cursor.execute("SELECT count(*) FROM catalog_search_word")
                self.stdout.write(f"{cursor.fetchone()[0]} words in the dictionary")
        finally:
            with connection.cursor() as cursor:
                for table in (BEFORE_TABLE, COUNTED_TABLE):
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def count_words(self, chunk_size: int) -> None:
        """Every model's words into COUNTED_TABLE, and the dictionary as it was into
        BEFORE_TABLE, all as of one snapshot (REPEATABLE READ, exported to the other jobs'
        connections); no lock a writer waits for."""
        outermost = not connection.in_atomic_block
        jobs = self.jobs
        with connection.cursor() as cursor:  # committed first: every job writes into it
            cursor.execute(
                f"CREATE UNLOGGED TABLE {COUNTED_TABLE} "
                "(word text NOT NULL, scope integer NOT NULL, model_count integer NOT NULL)"
            )
        with transaction.atomic(), connection.cursor() as cursor:
            if outermost:  # inside a caller's transaction (tests), that one is the snapshot
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(
                f"CREATE UNLOGGED TABLE {BEFORE_TABLE} AS "  # noqa: S608 (constants)
                "SELECT word, scope, model_count FROM catalog_search_word"
            )
            snapshot = None
            if jobs > 1:
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot = cursor.fetchone()[0]

            def same_snapshot(job_cursor):
                # A job's own transaction, reading the catalogue as of the main snapshot.
                job_cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                job_cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])

            def count(job_cursor, ids):
                job_cursor.execute(DICTIONARY_BATCH, [ids])
                if jobs > 1:  # keep the snapshot: commit and start again from it
                    job_cursor.execute("COMMIT")
                    same_snapshot(job_cursor)

            progress = Progress(self.stdout, "dictionary", Model.objects.count())
            _in_parallel(
                jobs,
                _batches_of_ids(chunk_size),
                count,
                progress,
                setup=same_snapshot if jobs > 1 else None,
            )

    def step_embeddings(self, chunk_size: int) -> None:
        progress = Progress(self.stdout, "embeddings", Model.objects.count())

        def advanced(done: int, total: int) -> None:
            progress.advance(done - progress.done)

        try:
            written = embeddings.rebuild_embeddings(progress=advanced)
        except EncoderUnavailable as exc:
            raise CommandError(f"cannot embed the catalogue: {exc}") from exc
        self.stdout.write(f"{written} embeddings written")

    def step_elasticsearch(self, chunk_size: int) -> None:
        if not settings.ELASTICSEARCH_URL:
            raise CommandError(
                "ELASTICSEARCH_URL is not set: there is no Elasticsearch to index into "
                "(search uses PostgreSQL)."
            )
        try:
            es = engine.writer()
            es.info()
        except (EngineUnavailable, ApiError, TransportError) as exc:
            raise CommandError(
                f"Elasticsearch at {engine.public_url()} does not answer: {exc}"
            ) from exc
        try:
            self.reindex(es, chunk_size)
        except (ApiError, TransportError) as exc:
            raise CommandError(f"Elasticsearch failed during the reindex: {exc}") from exc

    def reindex(self, es, chunk_size: int) -> None:
        alias = documents.alias_name()
        es.indices.put_index_template(name=documents.template_name(), **documents.index_template())
        index = documents.new_index_name()
        es.indices.create(index=index)
        try:
            indexed = self.fill(es, index, chunk_size)
            es.indices.refresh(index=index)
            replaced = self.switch_alias(es, alias, index)
        except BaseException:
            es.options(ignore_status=404).indices.delete(index=index)
            raise
        for old in replaced:
            es.options(ignore_status=404).indices.delete(index=old)
        self.stdout.write(
            f"Indexed {len(indexed)} models into {index}; {alias} now points at it"
            + (f" instead of {', '.join(replaced)} (deleted)." if replaced else ".")
        )
        changed, removed, failed = self.catch_up(es, index, indexed, chunk_size)
        es.indices.refresh(index=index)
        self.stdout.write(
            f"Caught up {changed} models written and {removed} deleted during the reindex."
        )
        if failed:
            self.stderr.write(
                f"{failed} of them failed to index and stay dirty for index_dirty_models."
            )

    def fill(self, es, index: str, chunk_size: int) -> dict[str, bytes]:
        """Every model into the new index; their fingerprints, by id."""
        indexed: dict[str, bytes] = {}

        def actions():
            rows = Model.objects.select_related("owner").order_by("pk")
            for model in rows.iterator(chunk_size=chunk_size):
                document = documents.model_document(model)
                indexed[str(model.pk)] = _fingerprint(document)
                yield {"_index": index, "_id": str(model.pk), "_source": document}

        failures = []
        for ok, item in helpers.streaming_bulk(
            es, actions(), chunk_size=chunk_size, raise_on_error=False, max_retries=3
        ):
            if not ok:
                failures.append(next(iter(item.values())))
        if failures:
            first = failures[0]
            raise CommandError(
                f"{len(failures)} models failed to index (first: {first.get('_id')}: "
                f"{first.get('error')}); the alias was left as it was."
            )
        return indexed

    def switch_alias(self, es, alias: str, index: str) -> list[str]:
        """Point the alias at `index` only, in one atomic call. Returns the indices it
        pointed at before."""
        try:
            current = sorted(es.indices.get_alias(name=alias))
        except NotFoundError:
            current = []
        actions = [{"remove": {"index": old, "alias": alias}} for old in current]
        if not current and es.indices.exists(index=alias):
            # A concrete index squats the alias's name (made by a write before any reindex,
            # with a guessed mapping): it goes in the same atomic step.
            actions.append({"remove_index": {"index": alias}})
        actions.append({"add": {"index": index, "alias": alias}})
        es.indices.update_aliases(actions=actions)
        return [old for old in current if old != index]

    def catch_up(
        self, es, index: str, indexed: dict[str, bytes], chunk_size: int
    ) -> tuple[int, int, int]:
        Model.objects.filter(search_dirty=True).update(search_dirty=False)
        seen: set[str] = set()
        changed: list[str] = []

        def actions():
            rows = Model.objects.select_related("owner").order_by("pk")
            for model in rows.iterator(chunk_size=chunk_size):
                model_id = str(model.pk)
                seen.add(model_id)
                document = documents.model_document(model)
                if indexed.get(model_id) != _fingerprint(document):
                    changed.append(model_id)
                    yield {"_index": index, "_id": model_id, "_source": document}

        failed = []
        for ok, item in helpers.streaming_bulk(
            es, actions(), chunk_size=chunk_size, raise_on_error=False, max_retries=3
        ):
            if not ok:
                failed.append(next(iter(item.values())).get("_id"))
        if failed:
            Model.objects.filter(pk__in=failed).update(search_dirty=True)
        gone = [model_id for model_id in indexed if model_id not in seen]
        # A document already deleted (404) is what was wanted: results are not checked.
        for _result in helpers.streaming_bulk(
            es,
            ({"_op_type": "delete", "_index": index, "_id": model_id} for model_id in gone),
            chunk_size=chunk_size,
            raise_on_error=False,
        ):
            pass
        return len(changed) - len(failed), len(gone), len(failed)
