"""Elasticsearch: the request bodies of `catalog.search.queries` sent to the alias of
`catalog.search.documents`, hits turned back into Model rows from PostgreSQL.

Searches fail fast (a short timeout, no retries): when the cluster does not answer, times
out, answers with an error or has no index yet, the engine raises EngineUnavailable and the
registry answers from PostgreSQL instead. Writes (indexing) get a longer timeout and a few
retries; they run in Celery tasks and the reindex command, never in a request."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable
from contextlib import contextmanager

from django.conf import settings
from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError, helpers

from catalog import selectors
from marketplace.core.health import DEGRADED, OK, ComponentHealth

from .. import documents, embeddings, queries
from ..queries import CatalogQuery, SearchResult
from . import EngineUnavailable

NAME = "elasticsearch"
# After a search finds the cluster unreachable (refused, timed out), how long this process
# answers searches from PostgreSQL without asking it again.
RECHECK_SECONDS = 5.0
WRITE_TIMEOUT = 30
WRITE_RETRIES = 2
BULK_CHUNK_SIZE = 200

logger = logging.getLogger(__name__)
_unreachable_until: dict[str, float] = {}


@functools.lru_cache(maxsize=8)
def _client(url: str, timeout: float) -> Elasticsearch:
    return Elasticsearch(url, request_timeout=timeout, max_retries=0, retry_on_timeout=False)


def client() -> Elasticsearch:
    """The client for searches: ELASTICSEARCH_TIMEOUT seconds per request, no retries."""
    if not settings.ELASTICSEARCH_URL:
        raise EngineUnavailable("ELASTICSEARCH_URL is not set")
    try:
        return _client(settings.ELASTICSEARCH_URL, float(settings.ELASTICSEARCH_TIMEOUT))
    except ValueError as exc:
        raise EngineUnavailable(f"ELASTICSEARCH_URL is not usable: {exc}") from exc


def writer() -> Elasticsearch:
    """The client for indexing: a longer timeout and a few retries."""
    return client().options(
        request_timeout=WRITE_TIMEOUT, max_retries=WRITE_RETRIES, retry_on_timeout=True
    )


def public_url() -> str:
    """ELASTICSEARCH_URL without credentials, for messages."""
    scheme, _, rest = settings.ELASTICSEARCH_URL.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if rest else settings.ELASTICSEARCH_URL


@contextmanager
def answering(what: str):
    """Turn the client's failures into EngineUnavailable, which the registry answers by
    falling back to PostgreSQL. Errors that are not outages (a 4xx other than a missing
    index) are also logged as errors: they are bugs or misconfiguration, not weather."""
    try:
        yield
    except NotFoundError as exc:
        raise EngineUnavailable(
            f"no index {documents.alias_name()} in Elasticsearch: run `manage.py search_reindex`"
        ) from exc
    except ApiError as exc:
        status = exc.meta.status
        if status < 500 and status != 429:
            logger.error("Elasticsearch refused the %s request: %s", what, exc)
        raise EngineUnavailable(f"Elasticsearch failed the {what} request: {exc}") from exc
    except TransportError as exc:
        raise EngineUnavailable(f"Elasticsearch does not answer: {exc}") from exc


def private_owner_ids(principal) -> list[int]:
    """The owners whose private models the principal may see, for the visibility filter."""
    return selectors.private_owner_ids(principal)


def _search(body: dict, what: str):
    """One `_search` on the alias. After the cluster failed to answer, searches go straight
    to PostgreSQL for RECHECK_SECONDS instead of each waiting for its own timeout."""
    url = settings.ELASTICSEARCH_URL
    if time.monotonic() < _unreachable_until.get(url, 0.0):
        raise EngineUnavailable(
            f"Elasticsearch did not answer less than {RECHECK_SECONDS:g} s ago; not asked again yet"
        )
    keywords = {
        {"from": "from_", "_source": "source"}.get(key, key): value for key, value in body.items()
    }
    try:
        with answering(what):
            response = client().search(index=documents.alias_name(), **keywords)
    except EngineUnavailable as exc:
        if isinstance(exc.__cause__, TransportError):
            _unreachable_until[url] = time.monotonic() + RECHECK_SECONDS
        raise
    _unreachable_until.pop(url, None)
    return response


def _hydrate(principal, hits: list[dict]) -> list:
    """Model rows of the hits, in the order of the hits. The rows are read through
    models_visible_to, so a document that is stale (a model made private or deleted since it
    was indexed) can never show a model the principal may not see."""
    ids = [hit["_id"] for hit in hits]
    if not ids:
        return []
    rows = {str(m.pk): m for m in selectors.models_visible_to(principal).filter(pk__in=ids)}
    return [rows[i] for i in ids if i in rows]


def search(principal, query: CatalogQuery) -> SearchResult:
    body = queries.elasticsearch_search_body(query, private_owner_ids(principal))
    # Meaning: a knn clause on the models' embeddings beside the text query.
    body = embeddings.elasticsearch_hybrid_body(
        body, query, embeddings.elasticsearch_query_vector(query)
    )
    response = _search(body, "search")
    hits = response["hits"]
    return SearchResult(
        _hydrate(principal, hits["hits"]),
        hits["total"]["value"],
        queries.facets_from_aggregations(response.get("aggregations") or {}),
        NAME,
        corrected_query=queries.corrected_query_from_response(query, response),
        # track_total_hits stopped counting: "gte" the value.
        count_is_lower_bound=hits["total"].get("relation") == "gte",
    )


def suggest(principal, text: str, limit: int = 8) -> list:
    text = text.strip().lower()
    if not text:
        return []
    body = queries.elasticsearch_suggest_body(text, private_owner_ids(principal), limit)
    return _hydrate(principal, _search(body, "suggest")["hits"]["hits"])


def corrections(principal, text: str, limit: int = 3) -> list[str]:
    """The query with misspelt words replaced, best first; only corrections that find a
    model the principal may see."""
    typed = queries.correction_words(text)
    if not typed or queries.uses_operators(text):
        return []
    body = queries.elasticsearch_corrections_body(text, private_owner_ids(principal), limit)
    response = _search(body, "corrections")
    found = []
    for entry in (response.get("suggest") or {}).get("correction", []):
        for option in entry["options"]:
            corrected = queries.corrected_text(text, typed, option["text"])
            if corrected and option.get("collate_match", True) and corrected not in found:
                found.append(corrected)
    return found[:limit]


def health():
    alias = documents.alias_name()
    try:
        es = client()
        with answering("health"):
            version = es.info()["version"]["number"]
            has_index = bool(es.indices.exists_alias(name=alias))
    except EngineUnavailable as exc:
        return ComponentHealth(
            DEGRADED,
            "postgresql",
            f"Elasticsearch at {public_url()} is unavailable ({exc}); "
            "search falls back to PostgreSQL",
        )
    if not has_index:
        return ComponentHealth(
            DEGRADED,
            "postgresql",
            f"Elasticsearch {version} at {public_url()} has no index {alias}: run "
            "`manage.py search_reindex`; until then search falls back to PostgreSQL",
        )
    return ComponentHealth(OK, NAME, f"Elasticsearch {version} at {public_url()}, index {alias}")


# -- writes -----------------------------------------------------------------------------------


def index_models(models: Iterable) -> list[str]:
    """Write the documents of these models (owners loaded) into the alias. Returns the ids
    that failed; raises EngineUnavailable when the cluster does not answer at all.

    `require_alias` keeps a write from creating a concrete index with a guessed mapping
    under the alias's name when no reindex has made the alias yet."""
    alias = documents.alias_name()
    actions = (
        {
            "_op_type": "index",
            "_index": alias,
            "_id": str(model.pk),
            "_source": documents.model_document(model),
        }
        for model in models
    )
    return _bulk(actions, "indexing", require_alias=True)


def delete_documents(model_ids: Iterable) -> list[str]:
    """Remove the documents of these models from the alias (absent ones count as removed)."""
    alias = documents.alias_name()
    actions = ({"_op_type": "delete", "_index": alias, "_id": str(i)} for i in model_ids)
    return _bulk(actions, "delete", ignore=(404,))


def _bulk(actions, what: str, *, ignore=(), **kwargs) -> list[str]:
    failed = []
    with answering(what):
        for ok, item in helpers.streaming_bulk(
            writer(),
            actions,
            chunk_size=BULK_CHUNK_SIZE,
            raise_on_error=False,
            max_retries=WRITE_RETRIES,
            initial_backoff=1,
            **kwargs,
        ):
            result = next(iter(item.values()))
            if not ok and result.get("status") not in ignore:
                if not failed:
                    logger.warning(
                        "Elasticsearch %s of %s failed: %s",
                        what,
                        result.get("_id"),
                        result.get("error"),
                    )
                failed.append(result.get("_id"))
    return failed
