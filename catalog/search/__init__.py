"""Catalogue search: one interface, two engines (PostgreSQL full text, Elasticsearch).

Callers use only the functions here; `engines` picks the engine and falls back to
PostgreSQL when Elasticsearch does not answer."""

from __future__ import annotations

from marketplace.core.metrics import timed_search

from . import engines
from .queries import CatalogQuery, SearchResult


@timed_search("search")
def search(principal, query: CatalogQuery) -> SearchResult:
    return engines.call("search", principal, query)


@timed_search("suggest")
def suggest(principal, text: str, limit: int = 8) -> list:
    return engines.call("suggest", principal, text, limit)


def corrections(principal, text: str) -> list[str]:
    """Spelling corrections for a query that found nothing, best first."""
    return engines.call("corrections", principal, text)


def engine_health():
    return engines.configured().health()


__all__ = ["CatalogQuery", "SearchResult", "corrections", "engine_health", "search", "suggest"]
