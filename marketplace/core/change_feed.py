"""What a process may remember between requests, and how every process forgets it within a
second of a change.

A call reads the same few rows every time: its API key, the model, the version `latest`
points at, the caller's membership, the compute price, the team's budgets. They change
rarely, so each process keeps them in a `TableCache`. PostgreSQL tells every process when
one of their tables changes: each watched table has a trigger (`watch_table_sql`, installed
by its app's migrations) that sends NOTIFY on CHANNEL with the table's name when the change
commits, and each process has one listener thread that empties the caches reading that
table as soon as the notification arrives (milliseconds).

Fail closed: a process uses its caches only while its listener is connected and has heard
from PostgreSQL within FRESH_WITHIN; otherwise every read goes to the database, as if
nothing were cached. A read that raced a change (loaded before the notification, stored
after it) is never stored: each cache has a generation that every forget bumps."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.base import ModelState

logger = logging.getLogger(__name__)

CHANNEL = "marketplace_changed"
# How often the listener proves its connection alive, and how recent that proof must be for
# a cache to be used: a change is forgotten by every process within FRESH_WITHIN at worst.
HEARTBEAT_SECONDS = 0.2
FRESH_WITHIN = 0.6
RECONNECT_SECONDS = 1.0
APPLICATION_NAME = "marketplace change feed"

NOTIFY_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION marketplace_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
"""
DROP_NOTIFY_FUNCTION_SQL = "DROP FUNCTION IF EXISTS marketplace_notify_change();"


def watch_table_sql(table: str, *, ignore_columns: Iterable[str] = ()) -> str:
    """The triggers that announce every committed change of `table`. An update that changes
    only `ignore_columns` (bookkeeping no cache reads, such as a key's last use) is not
    announced, so it does not empty the caches."""
    ignored = " - ".join(f"'{column}'" for column in ignore_columns)
    if not ignored:
        return (
            f"CREATE TRIGGER marketplace_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION marketplace_notify_change();"
        )
    return (
        f"CREATE TRIGGER marketplace_changed AFTER INSERT OR DELETE OR TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION marketplace_notify_change();\n"
        f"CREATE TRIGGER marketplace_changed_update AFTER UPDATE ON {table} FOR EACH ROW "
        f"WHEN ((to_jsonb(OLD) - {ignored}) IS DISTINCT FROM (to_jsonb(NEW) - {ignored})) "
        f"EXECUTE FUNCTION marketplace_notify_change();"
    )


def unwatch_table_sql(table: str) -> str:
    return (
        f"DROP TRIGGER IF EXISTS marketplace_changed ON {table};\n"
        f"DROP TRIGGER IF EXISTS marketplace_changed_update ON {table};"
    )


_MISSING = object()


class TableCache:
    """Values computed from the rows of `tables`, remembered by key while this process's
    listener is fresh, forgotten when any of those tables changes. Store plain values (or
    `frozen` rows), never objects a request may change."""

    def __init__(self, name: str, tables: Iterable[str], *, max_entries: int = 4096):
        self.name = name
        self.tables = frozenset(tables)
        self.max_entries = max_entries
        self._entries: dict = {}
        self._generation = 0
        self._lock = threading.Lock()
        _feed.add(self)

    def get(self, key, load: Callable[[], Any]):
        """The value for `key`: remembered, or `load()`ed (and remembered if no change was
        announced meanwhile). Exceptions from `load` are not remembered."""
        if not _feed.fresh():
            return load()
        value = self._entries.get(key, _MISSING)
        if value is not _MISSING:
            return value
        generation = self._generation
        value = load()
        with self._lock:
            if generation == self._generation and _feed.fresh():
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key] = value
        return value

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class _Feed:
    """This process's listener and the caches it keeps honest."""

    def __init__(self):
        self._caches: list[TableCache] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._connected = False
        self._alive_at = 0.0
        self._stopping = threading.Event()
        self.notices = 0

    def add(self, cache: TableCache) -> None:
        with self._lock:
            self._caches.append(cache)

    def caches(self) -> list[TableCache]:
        return list(self._caches)

    def fresh(self) -> bool:
        if not settings.HOT_PATH_CACHE:
            return False
        if self._pid != os.getpid():
            self._start()
            return False
        return self._connected and time.monotonic() - self._alive_at < FRESH_WITHIN

    def forget(self, table: str | None = None) -> None:
        for cache in self.caches():
            if table is None or table in cache.tables:
                cache.forget()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            # A forked child inherits the parent's memory but not its thread.
            self._pid = os.getpid()
            self._connected = False
            self._stopping = threading.Event()
            for cache in self._caches:
                cache.forget()
            self._thread = threading.Thread(
                target=self._listen, args=(self._stopping,), name="change-feed", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop listening (tests); the next fresh() starts again."""
        with self._lock:
            self._stopping.set()
            self._connected = False
            thread, self._thread, self._pid = self._thread, None, 0
        if thread is not None:
            thread.join(timeout=5)
        self.forget()

    def _listen(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                with connections["default"].independent_connection(
                    application_name=APPLICATION_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Whatever was remembered before listening may have changed unheard.
                    self.forget()
                    self._alive_at = time.monotonic()
                    self._connected = True
                    while not stopping.is_set():
                        for notice in conn.notifies(timeout=HEARTBEAT_SECONDS):
                            self.notices += 1
                            self.forget(notice.payload)
                        conn.execute("SELECT 1")
                        self._alive_at = time.monotonic()
            except Exception:
                if not stopping.is_set():
                    logger.warning(
                        "the change feed lost PostgreSQL; caches are off until it is back",
                        exc_info=True,
                    )
            finally:
                self._connected = False
                self.forget()
            stopping.wait(RECONNECT_SECONDS)


_feed = _Feed()


def fresh() -> bool:
    """Whether this process may use its caches now (starting its listener if needed)."""
    return _feed.fresh()


def stop() -> None:
    _feed.stop()


def caches() -> list[TableCache]:
    return _feed.caches()


@functools.cache
def _attnames(model) -> tuple[str, ...]:
    return tuple(field.attname for field in model._meta.concrete_fields)


def frozen(instance, *related: str) -> tuple:
    """A model instance as plain values (and its `related` instances, already loaded), for a
    TableCache: `thawed` makes a new instance from it for each request."""
    model = type(instance)
    return (
        model,
        tuple(getattr(instance, name) for name in _attnames(model)),
        tuple((name, frozen(getattr(instance, name))) for name in related),
    )


def thawed(snapshot: tuple):
    """A new instance from `frozen` values, as a query would have loaded it. It skips
    Model.__init__ (its field descriptors and init signals, which none of the cached models
    has receivers for; tests/core/test_change_feed.py checks), a fifth of what a call spent
    on its cached rows."""
    model, values, related = snapshot
    instance = model.__new__(model)
    instance.__dict__.update(zip(_attnames(model), values, strict=True))
    state = instance._state = ModelState()
    state.adding = False
    state.db = DEFAULT_DB_ALIAS
    for name, snap in related:
        state.fields_cache[name] = thawed(snap)
    return instance
