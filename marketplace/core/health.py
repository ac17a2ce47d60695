"""Readiness of each component the platform needs, for /readyz.

Each check answers a ComponentHealth. `database` and `broker` are required: without them
nothing works, and /readyz answers 503. The others degrade the service without stopping it.

The checks are a registry, `checks`, filled in the apps' `AppConfig.ready()`: core adds
database and broker here, workers from heartbeat.py; catalog adds search; execution adds
sandbox; the gateway adds execution (where calls run is its choice). Nothing here imports
models, so every apps.py may import this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection
from kombu import Connection

from .registry import Registry

OK, DEGRADED, DOWN = "ok", "degraded", "down"


@dataclass
class ComponentHealth:
    status: str
    engine: str
    message: str
    required: bool = False
    latency_ms: float | None = None

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


def timed(check: Callable[[], ComponentHealth]) -> Callable[[], ComponentHealth]:
    """`check`, answering its own latency too."""

    def run() -> ComponentHealth:
        started = time.perf_counter()
        health = check()
        health.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return health

    run.__name__ = check.__name__
    return run


@timed
def check_database() -> ComponentHealth:
    engine = settings.DATABASE_ENGINE_NAME
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version')")
            (version,) = cursor.fetchone()
    except Exception as exc:
        return ComponentHealth(DOWN, engine, f"cannot query the database: {exc}", True)
    return ComponentHealth(OK, engine, f"PostgreSQL {version}", True)


@timed
def check_broker() -> ComponentHealth:
    engine = settings.BROKER_ENGINE_NAME
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return ComponentHealth(DOWN, engine, f"cannot reach the broker: {exc}", True)
    return ComponentHealth(OK, engine, "connected", True)


checks: Registry[Callable[[], ComponentHealth]] = Registry("health check")

# /readyz lists the components in this order, whatever order the apps' ready() added them
# in (INSTALLED_APPS readies execution before catalog); a check not named here follows, in
# the order it was added.
ORDER = ("database", "broker", "workers", "search", "sandbox", "execution")


def _in_order() -> list[tuple[str, Callable[[], ComponentHealth]]]:
    position = {name: index for index, name in enumerate(ORDER)}
    return sorted(checks.items(), key=lambda item: position.get(item[0], len(ORDER)))


def readiness() -> tuple[str, dict[str, ComponentHealth]]:
    components = {name: check() for name, check in _in_order()}
    if any(c.required and c.status == DOWN for c in components.values()):
        overall = DOWN
    elif any(c.status != OK for c in components.values()):
        overall = DEGRADED
    else:
        overall = OK
    return overall, components
