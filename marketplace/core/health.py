"""Readiness of each component the platform needs, for /readyz.

Each check answers a ComponentHealth. `database` and `broker` are required: without them
nothing works, and /readyz answers 503. The others degrade the service without stopping it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection

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


def _timed(check):
    def run() -> ComponentHealth:
        started = time.perf_counter()
        health = check()
        health.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return health

    run.__name__ = check.__name__
    return run


@_timed
def check_database() -> ComponentHealth:
    engine = settings.DATABASE_ENGINE_NAME
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version')")
            (version,) = cursor.fetchone()
    except Exception as exc:
        return ComponentHealth(DOWN, engine, f"cannot query the database: {exc}", True)
    return ComponentHealth(OK, engine, f"PostgreSQL {version}", True)


@_timed
def check_broker() -> ComponentHealth:
    from kombu import Connection

    engine = settings.BROKER_ENGINE_NAME
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return ComponentHealth(DOWN, engine, f"cannot reach the broker: {exc}", True)
    return ComponentHealth(OK, engine, "connected", True)


@_timed
def check_workers() -> ComponentHealth:
    from .heartbeat import live_workers

    try:
        workers = list(live_workers().values_list("hostname", flat=True))
    except Exception as exc:
        return ComponentHealth(DOWN, "celery", f"cannot read worker heartbeats: {exc}")
    if not workers:
        return ComponentHealth(
            DEGRADED, "celery", "no Celery worker has reported in; builds will wait"
        )
    return ComponentHealth(OK, "celery", f"{len(workers)} alive: {', '.join(sorted(workers))}")


@_timed
def check_search() -> ComponentHealth:
    from catalog.search import engine_health

    return engine_health()


@_timed
def check_sandbox() -> ComponentHealth:
    from execution.sandbox import sandbox_status

    sandbox = sandbox_status()
    if sandbox.unavailable:
        return ComponentHealth(DOWN, sandbox.engine, sandbox.message)
    if sandbox.enabled and sandbox.cgroups:
        return ComponentHealth(OK, sandbox.engine, sandbox.message)
    if sandbox.enabled:
        return ComponentHealth(DEGRADED, sandbox.engine, sandbox.message)
    return ComponentHealth(DEGRADED, sandbox.engine, f"sandbox off: {sandbox.message}")


@_timed
def check_execution() -> ComponentHealth:
    # Up a floor (core asks the gateway) until the apps register their own checks.
    from gateway.lifecycle import execution_health

    return execution_health()


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "workers": check_workers,
    "search": check_search,
    "sandbox": check_sandbox,
    "execution": check_execution,
}


def readiness() -> tuple[str, dict[str, ComponentHealth]]:
    components = {name: check() for name, check in CHECKS.items()}
    if any(c.required and c.status == DOWN for c in components.values()):
        overall = DOWN
    elif any(c.status != OK for c in components.values()):
        overall = DEGRADED
    else:
        overall = OK
    return overall, components
