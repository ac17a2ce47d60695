"""Django's PostgreSQL backend, with two things for the hot path of a call:

- The per-request health check (CONN_HEALTH_CHECKS) costs a round trip only when something
  suggests the connection broke. An idle connection receives nothing: the server writes to
  it only to answer, or when it goes away (a shutdown or a terminated backend sends an
  error, then closes). So a socket with nothing to read is taken as alive, and only one with
  something waiting is asked Django's `SELECT 1`.
- `prepared_cursor()`: a cursor whose parameters the server binds and whose statements are
  prepared on the connection, so PostgreSQL parses and plans each of the call's fixed
  statements once per connection instead of once per call, and psycopg sends parameters
  without quoting them into the SQL text. Django's own cursors bind on the client and
  prepare nothing, as the ORM's SQL is not always preparable (Django ticket #20516): only
  hand-written statements use this one."""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from django.utils.asyncio import async_unsafe


class _PreparedCursor(base.ServerBindingCursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=prepare is not False, binary=binary)


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

    def independent_connection(self, **options) -> psycopg.Connection:
        """A psycopg connection of its own to this database, in autocommit and outside
        Django's care (closing it is the caller's): to LISTEN, or to act as another session
        would. `options` are psycopg.connect's (application_name=...)."""
        params = self.get_connection_params()
        # Django's cursor class and adapters are for its own connections.
        params.pop("cursor_factory", None)
        params.pop("context", None)
        return psycopg.connect(autocommit=True, **params, **options)

    @async_unsafe
    def prepared_cursor(self):
        """A cursor for hand-written statements of fixed text (see the module docstring);
        used like `cursor()`."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            return self._prepare_cursor(_PreparedCursor(self.connection))
