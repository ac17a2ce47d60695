"""Catalogue search: one interface, two engines (PostgreSQL full text, Elasticsearch).

Callers use only the functions here; `engines` picks the engine and falls back to
PostgreSQL when Elasticsearch does not answer."""

from __future__ import annotations

from . import engines
from .queries import CatalogQuery, SearchResult


def search(principal, query: CatalogQuery) -> SearchResult:
    return engines.call("search", principal, query, timed=True)


def suggest(principal, text: str, limit: int = 8) -> list:
    return engines.call("suggest", principal, text, limit, timed=True)


def corrections(principal, text: str) -> list[str]:
    """Spelling corrections for a query that found nothing, best first."""
    return engines.call("corrections", principal, text)


def engine_health():
    return engines.configured().health()


__all__ = ["CatalogQuery", "SearchResult", "corrections", "engine_health", "search", "suggest"]
