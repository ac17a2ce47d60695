"""Catalogue search: one interface, two engines (PostgreSQL full text, Elasticsearch)."""

from __future__ import annotations

import urllib.error
import urllib.request

from django.conf import settings


def engine_health():
    from marketplace.core.health import DEGRADED, OK, ComponentHealth

    if not settings.ELASTICSEARCH_URL:
        return ComponentHealth(OK, "postgresql", "PostgreSQL full-text search")
    try:
        with urllib.request.urlopen(settings.ELASTICSEARCH_URL, timeout=2) as response:  # noqa: S310
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        return ComponentHealth(
            DEGRADED,
            "postgresql",
            f"Elasticsearch at {settings.ELASTICSEARCH_URL} does not answer ({exc}); "
            "searching with PostgreSQL instead",
        )
    return ComponentHealth(OK, "elasticsearch", f"Elasticsearch at {settings.ELASTICSEARCH_URL}")
