"""The registry of search engines, filled in CatalogConfig.ready(). Each engine is one module
exposing the same interface:

    NAME: str
    search(principal, query: CatalogQuery) -> SearchResult
    suggest(principal, text: str, limit: int) -> list[Model]
    corrections(principal, text: str) -> list[str]
    health() -> ComponentHealth

PostgreSQL is always available. Elasticsearch is used when ELASTICSEARCH_URL is set; when it
does not answer, the call is served by PostgreSQL and the fall back is logged (and /readyz
says so through the engine's health)."""

from __future__ import annotations

import logging
import time

from django.conf import settings

from marketplace.core.metrics import search_answered
from marketplace.core.registry import Registry

logger = logging.getLogger(__name__)

# Engine modules by NAME.
ENGINES: Registry = Registry("search engine")


class EngineUnavailable(Exception):
    """Raised by an engine that cannot answer now; the caller falls back to PostgreSQL."""


def get(name: str):
    return ENGINES.get(name)


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
