"""The registry of search engines. Each engine is one module exposing the same interface:

    NAME: str
    search(principal, query: CatalogQuery) -> SearchResult
    suggest(principal, text: str, limit: int) -> list[Model]
    corrections(principal, text: str) -> list[str]
    health() -> ComponentHealth

PostgreSQL is always available. Elasticsearch is used when ELASTICSEARCH_URL is set; when it
does not answer, the call is served by PostgreSQL and the fall back is logged (and /readyz
says so through the engine's health)."""

from __future__ import annotations

import importlib
import logging
import time

from django.conf import settings

from marketplace.core.metrics import search_answered

logger = logging.getLogger(__name__)

ENGINES = {
    "postgresql": "catalog.search.engines.postgres",
    "elasticsearch": "catalog.search.engines.elasticsearch",
}


class EngineUnavailable(Exception):
    """Raised by an engine that cannot answer now; the caller falls back to PostgreSQL."""


def get(name: str):
    return importlib.import_module(ENGINES[name])


def configured():
    return get("elasticsearch" if settings.ELASTICSEARCH_URL else "postgresql")


def primary():
    return get("postgresql")


def call(operation: str, *args, timed: bool = False, **kwargs):
    """Run `operation` on the configured engine, or on PostgreSQL when it cannot answer;
    `timed` records its duration under the engine that answered."""
    started = time.perf_counter()
    engine = configured()
    if engine.NAME != "postgresql":
        try:
            result = getattr(engine, operation)(*args, **kwargs)
        except EngineUnavailable as exc:
            logger.warning(
                "search engine %s unavailable (%s); %s served by PostgreSQL",
                engine.NAME,
                exc,
                operation,
            )
            engine = primary()
            result = getattr(engine, operation)(*args, **kwargs)
    else:
        result = getattr(engine, operation)(*args, **kwargs)
    if timed:
        search_answered(engine.NAME, operation, time.perf_counter() - started)
    return result
