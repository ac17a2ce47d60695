"""The catalogue's readiness check for /readyz, added to `marketplace.core.health.checks` in
CatalogConfig.ready()."""

from __future__ import annotations

from marketplace.core.health import ComponentHealth, timed

from .search import engine_health


@timed
def check_search() -> ComponentHealth:
    return engine_health()
