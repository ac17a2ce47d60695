"""Django's PostgreSQL backend, whose per-request health check (CONN_HEALTH_CHECKS) costs a
round trip only when something suggests the connection broke.

An idle connection receives nothing: the server writes to it only to answer, or when it
goes away (a shutdown or a terminated backend sends an error, then closes). So a socket
with nothing to read is taken as alive, and only one with something waiting is asked
Django's `SELECT 1`. A call's first query no longer waits for that extra round trip."""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable or super().is_usable()
