"""The execution layer's readiness check for /readyz (the sandbox), added to
`marketplace.core.health.checks` in ExecutionConfig.ready()."""

from __future__ import annotations

from marketplace.core.health import DEGRADED, DOWN, OK, ComponentHealth, timed

from .sandbox import sandbox_status


@timed
def check_sandbox() -> ComponentHealth:
    sandbox = sandbox_status()
    if sandbox.unavailable:
        return ComponentHealth(DOWN, sandbox.engine, sandbox.message)
    if sandbox.enabled and sandbox.cgroups:
        return ComponentHealth(OK, sandbox.engine, sandbox.message)
    if sandbox.enabled:
        return ComponentHealth(DEGRADED, sandbox.engine, sandbox.message)
    return ComponentHealth(DEGRADED, sandbox.engine, f"sandbox off: {sandbox.message}")
