"""Rebuild the Elasticsearch index of the catalogue with no downtime.

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

Stops with a clear error, leaving the alias untouched, when ELASTICSEARCH_URL is not set,
the cluster does not answer, or any document fails to index."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from elasticsearch import ApiError, NotFoundError, TransportError, helpers

from catalog.models import Model
from catalog.search import documents
from catalog.search.engines import EngineUnavailable
from catalog.search.engines import elasticsearch as engine


def _fingerprint(document: dict) -> bytes:
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).digest()


class Command(BaseCommand):
    help = (
        "Build a new Elasticsearch index of every model, then switch the search alias to it "
        "atomically and delete the old index."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size", type=int, default=500, help="models per bulk request (500)"
        )

    def handle(self, *args, chunk_size: int, **options):
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
