"""Rate limits (requests per window) and concurrency limits (calls in flight) per key, user
and team, shared by every web worker process on every host. On the ground floor because two
floors count with it: the gateway (calls) and accounts (log-in attempts).

The gateway calls three things: `check_rates` before a call, `rate_limit_headers` for every
answer, and `concurrency_slot` around a synchronous call. Where the state lives is chosen by
settings (`get_limiter`): Redis when `RATE_LIMIT_REDIS_URL` (default: `REDIS_URL`) is set,
otherwise the default PostgreSQL database. Both are real, tested implementations of `Limiter`.

Rate algorithm: GCRA (the generic cell rate algorithm, i.e. a token bucket that is exact)
-----------------------------------------------------------------------------------------
A subject with a limit of L requests per window W (`RATE_LIMIT_WINDOW_SECONDS`, 60) may send
L requests at once, and after that one more every W/L seconds: a request frees continuously,
W/L after it was spent, instead of all at once at a minute boundary. A fixed window lets 2L
through in an instant around the boundary; here no instant ever lets more than L through,
the long-run rate is exactly L per W, and the worst case over any span of W seconds is a full
burst followed by the refill (under 2L, reached only by a client that waited a whole window
first). It is the algorithm of redis-cell, Stripe's and many CDNs' limiters.

The state is one pair of integers per subject, kept in integer arithmetic so that both
backends agree to the unit and nothing drifts: `level` (capacity in use, where one request
costs W in milliseconds and the level drains by L per elapsed millisecond, so a full bucket
is L·W) and `updated_ms` (when level was measured, on the server's clock: Redis `TIME` or
PostgreSQL `clock_timestamp()`, so web hosts with skewed clocks agree). A request is allowed
when `drained_level + W <= L·W`. From the level follow `remaining` (whole requests left) and
`reset` (seconds until the next request frees: `Retry-After` when refused). State is dropped
once it has drained: Redis keys carry that TTL; PostgreSQL rows are deleted by
`purge_expired()`, which a periodic task calls (the gateway's `purge_rate_limits`); a
drained row is identical to no row.

Several subjects (key, team) are checked together, all or nothing: a request refused by one
subject consumes nothing from the others.
- Redis: one Lua script reads every subject, decides, and writes only if all allowed.
- PostgreSQL: one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` for all subjects, rows
  locked in subject order (no deadlocks), committed if all allowed, else rolled back. With one
  subject it is a single autocommit statement. Locks are held for that one statement only.

Where the PostgreSQL statements run. Never inside the caller's transaction: a savepoint
there would keep the rows locked until the caller commits, that is through the whole model
call, queueing every other call of the team behind it, and the count would vanish if the
caller rolled back. So when the current thread's default connection is in autocommit (the
gateway's normal case) the statements run on it, each its own short transaction; when it is
inside `atomic()` they run on a second, per-thread connection to the same database, so they
commit at once whatever the caller's transaction does.

The PostgreSQL tables are `gateway_rate_limit` and `gateway_concurrency_slot`, made by the
gateway's migration 0001 when this module lived there; they keep those names so a database
keeps its counters.

Concurrency: a slot is a row (subject, slot number) or a member of a Redis sorted set, with
an expiry of `ttl_seconds`, so a process that dies holding one frees it when it expires.

When Redis fails (down, timeout, cluster misconfiguration) the limiter logs a warning and
uses PostgreSQL for the next few seconds (`REDIS_RETRY_AFTER_SECONDS`) instead of failing the
call: limits stay enforced, though counts restart on the other store.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from redis.backoff import NoBackoff
from redis.retry import Retry

from marketplace.core.errors import RateLimitError

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_SECONDS = 60
DEFAULT_KEY_PREFIX = "marketplace:limits:"
# Every quantity stays an integer below 2**52 so that Lua's numbers (doubles) are exact; a
# limit beyond that (over 75 billion per minute) is clamped, i.e. effectively unlimited.
MAX_UNITS = 2**52
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_RETRY_AFTER_SECONDS = 5.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int  # requests per window
    remaining: int  # whole requests left after this one
    reset_seconds: int  # until the next request frees (0: nothing in use)
    policy: str  # RateLimit-Policy item, e.g. '60;w=60'
    name: str  # "key", "user" or "team"


class ConcurrencyLimitExceeded(RateLimitError):
    """All `limit` slots of the subject are taken. A RateLimitError (429), so that even when
    not caught it becomes the documented error body."""

    def __init__(self, name: str, subject_id: str, limit: int):
        self.name = name
        self.subject_id = subject_id
        self.limit = limit
        super().__init__(
            f"{limit} calls of this {name} are already running; retry when one finishes",
            headers={"Retry-After": "1"},
        )


# -- the public functions ------------------------------------------------------------------


def window_seconds() -> int:
    window = int(getattr(settings, "RATE_LIMIT_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS))
    if window < 1:
        raise ImproperlyConfigured("RATE_LIMIT_WINDOW_SECONDS must be at least 1")
    return window


def check_rates(
    subjects: Sequence[tuple[str, str, int]], *, window: int | None = None
) -> list[RateDecision]:
    """Count this request against every (name, subject_id, limit per window) and decide.
    A limit <= 0 means unlimited: that subject is skipped and gets no decision, so the
    decisions are those of the limited subjects, in the given order. All or nothing: when
    any subject refuses, no subject is charged. `window` (seconds) defaults to
    RATE_LIMIT_WINDOW_SECONDS; a subject must always be counted in the same window."""
    window = window or window_seconds()
    cost = window * 1000
    counted = _counted(subjects, cost)
    if not counted:
        return []
    return _decisions(counted, get_limiter().hit(counted, cost), cost, window)


def _counted(subjects: Sequence[tuple[str, str, int]], cost: int) -> list[Subject]:
    counted: list[Subject] = []
    for name, subject_id, limit in subjects:
        if limit is None or limit <= 0:
            continue
        counted.append(Subject(name, f"{name}:{subject_id}", min(int(limit), MAX_UNITS // cost)))
    if len({subject.key for subject in counted}) != len(counted):
        raise ValueError(f"a subject appears twice in {subjects!r}")
    return counted


def _decisions(
    counted: list[Subject], outcomes: list[tuple[bool, int]], cost: int, window: int
) -> list[RateDecision]:
    charged = all(allowed for allowed, _ in outcomes)
    return [
        _decision(subject, allowed, level if charged or not allowed else level - cost, window)
        for subject, (allowed, level) in zip(counted, outcomes, strict=True)
    ]


def rate_limit_headers(decisions: Sequence[RateDecision]) -> dict[str, str]:
    """Headers of draft-ietf-httpapi-ratelimit-headers-07 for the binding decision:

        RateLimit-Policy: 60;w=60
        RateLimit: limit=60, remaining=12, reset=1
        Retry-After: 12                      (only when refused)

    The binding decision is, among refusals, the one that frees last (so `reset` equals
    `Retry-After`); otherwise the one with the fewest requests remaining. `reset` is the
    number of seconds until the next request frees. No decisions (all unlimited): no headers.
    """
    if not decisions:
        return {}
    refused = [decision for decision in decisions if not decision.allowed]
    if refused:
        binding = max(refused, key=lambda d: d.reset_seconds)
    else:
        binding = min(decisions, key=lambda d: (d.remaining, -d.reset_seconds))
    headers = {
        "RateLimit-Policy": binding.policy,
        "RateLimit": (
            f"limit={binding.limit}, remaining={binding.remaining}, reset={binding.reset_seconds}"
        ),
    }
    if refused:
        headers["Retry-After"] = str(max(1, binding.reset_seconds))
    return headers


@contextmanager
def concurrency_slot(
    name: str, subject_id: str, limit: int, *, ttl_seconds: float
) -> Iterator[None]:
    """Hold one of `limit` slots of the subject for the with-block; raise
    ConcurrencyLimitExceeded at once when all are taken. A slot expires after `ttl_seconds`
    (the call's timeout plus a margin) even if its holder never releases it. A limit <= 0
    means unlimited."""
    if limit is None or limit <= 0:
        yield
        return
    ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
    slot = get_limiter().acquire_slot(f"{name}:{subject_id}", int(limit), ttl_ms)
    if slot is None:
        raise ConcurrencyLimitExceeded(name, subject_id, limit)
    try:
        yield
    finally:
        slot.release()


@dataclass(frozen=True)
class SlotRequest:
    """A concurrency slot wanted for the admitted work: one of `limit` of `name:subject_id`
    (a limit <= 0: unlimited, no slot), expiring after `ttl_seconds`."""

    name: str
    subject_id: str
    limit: int
    ttl_seconds: float

    @property
    def key(self) -> str:
        return f"{self.name}:{self.subject_id}"

    @property
    def ttl_ms(self) -> int:
        return max(1, math.ceil(self.ttl_seconds * 1000))


@dataclass(frozen=True)
class Admission:
    """The outcome of `admit`. `decisions` as from `check_rates`; `slot` the slot held (None
    without a concurrency limit, or when refused); `slots_full` when every slot was taken;
    `then_ran` whether the caller's statement ran in the admitting statement (it did exactly
    when admitted on a limiter that can combine them)."""

    decisions: list[RateDecision]
    slot: Slot | None
    slots_full: bool
    then_ran: bool

    @property
    def rates_allowed(self) -> bool:
        return all(decision.allowed for decision in self.decisions)


def admit(
    subjects: Sequence[tuple[str, str, int]],
    slot: SlotRequest,
    *,
    then: tuple[str, list] | None = None,
) -> Admission:
    """`check_rates(subjects)`, then, if they allow it, take a concurrency slot as
    `concurrency_slot` would (held until `Slot.release`). `then` is the caller's own
    statement ("INSERT ... SELECT ... FROM {gate}"): the PostgreSQL limiter runs it in the
    same statement, once, only when the rates and the slot were granted (`{gate}` has one
    row exactly then), so admitting a call and writing its record is one round trip
    instead of three. It does so only on the caller's connection in autocommit (see the
    module docstring); otherwise, and on Redis, `then_ran` is False and the caller runs
    its statement itself."""
    window = window_seconds()
    cost = window * 1000
    counted = _counted(subjects, cost)
    limiter = get_limiter()
    if then is not None and isinstance(limiter, PostgresLimiter) and limiter.combines():
        outcomes, number, full, then_ran = limiter.admit(counted, cost, slot, then)
        decisions = _decisions(counted, outcomes, cost, window)
        held = Slot(limiter, slot.key, number[1], number[0]) if number is not None else None
        return Admission(decisions, held, full, then_ran)
    decisions = _decisions(counted, limiter.hit(counted, cost) if counted else [], cost, window)
    if not all(decision.allowed for decision in decisions):
        return Admission(decisions, None, False, False)
    if slot.limit is None or slot.limit <= 0:
        return Admission(decisions, None, False, False)
    held = limiter.acquire_slot(slot.key, int(slot.limit), slot.ttl_ms)
    return Admission(decisions, held, held is None, False)


def purge_expired() -> int:
    """Delete drained rate state and expired slots; returns how many were deleted. For a
    periodic task (every few minutes). Redis expires its keys by itself; the PostgreSQL
    tables are purged whatever the backend, as they also serve when Redis is down."""
    return get_limiter().purge_expired()


# -- the interface and the registry --------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One thing counted against a limit: the gateway's keys, users and teams, and the
    log-in throttle's usernames and addresses (accounts.login_throttle)."""

    name: str
    key: str  # "{name}:{subject_id}"
    limit: int


@dataclass
class Slot:
    limiter: Limiter
    key: str
    token: str
    number: int = 0
    released: bool = False

    def release_statement(self) -> tuple[str, list] | None:
        """A statement ("DELETE ... RETURNING 1") that releases this slot, for a caller to
        run as a common table expression of a statement of its own on the default
        connection (then `released` is set), or None where that would not be safe: a
        slot kept elsewhere than PostgreSQL, or a connection inside a transaction, which
        could roll the release back."""
        if self.released or not isinstance(self.limiter, PostgresLimiter):
            return None
        if not self.limiter.combines():
            return None
        return _RELEASE_SQL + " RETURNING 1", [self.key, self.number, self.token]

    def release(self) -> None:
        """Never raises: a slot that cannot be released expires by itself."""
        if self.released:
            return
        self.released = True
        try:
            self.limiter.release_slot(self)
        except Exception:
            logger.warning(
                "could not release a concurrency slot of %s; it expires by itself",
                self.key,
                exc_info=True,
            )


class Limiter(ABC):
    engine: str

    @abstractmethod
    def hit(self, subjects: Sequence[Subject], cost: int) -> list[tuple[bool, int]]:
        """Charge `cost` to every subject if all allow it, atomically. Returns per subject
        (allowed, level): the level with this request for a subject that allowed it (even if
        another refused), the level without it for a subject that refused."""

    @abstractmethod
    def acquire_slot(self, key: str, limit: int, ttl_ms: int) -> Slot | None: ...

    @abstractmethod
    def release_slot(self, slot: Slot) -> None: ...

    @abstractmethod
    def purge_expired(self) -> int: ...


def _decision(subject: Subject, allowed: bool, level: int, window: int) -> RateDecision:
    cost = window * 1000
    limit = subject.limit
    # Free capacity; negative when the limit was lowered below what is already in use.
    free = limit * cost - level
    remaining = min(max(free // cost, 0), limit)
    # The level drains by `limit` per millisecond; one more request is free when the free
    # capacity reaches (remaining + 1) requests. Nothing in use: nothing to wait for.
    reset_ms = 0 if remaining >= limit else -(-((remaining + 1) * cost - free) // limit)
    reset = -(-reset_ms // 1000)
    return RateDecision(
        allowed=allowed,
        limit=limit,
        remaining=remaining,
        reset_seconds=reset if allowed else max(reset, 1),
        policy=f"{limit};w={window}",
        name=subject.name,
    )


def _postgresql_limiter(url: str, prefix: str) -> Limiter:
    return PostgresLimiter()


def _redis_limiter(url: str, prefix: str) -> Limiter:
    if not url:
        raise ImproperlyConfigured(
            "RATE_LIMIT_BACKEND is 'redis' but neither RATE_LIMIT_REDIS_URL nor REDIS_URL is set"
        )
    return RedisLimiter(url, prefix, fallback=PostgresLimiter())


LIMITERS: dict[str, Callable[[str, str], Limiter]] = {
    "postgresql": _postgresql_limiter,
    "redis": _redis_limiter,
}
_limiters: dict[tuple[str, str, str], Limiter] = {}
_limiters_lock = threading.Lock()


def get_limiter() -> Limiter:
    """The limiter the settings choose: `RATE_LIMIT_BACKEND` ('redis' or 'postgresql'), or
    when it is empty, Redis if `RATE_LIMIT_REDIS_URL` (default `REDIS_URL`) is set."""
    url = getattr(settings, "RATE_LIMIT_REDIS_URL", "") or getattr(settings, "REDIS_URL", "")
    backend = getattr(settings, "RATE_LIMIT_BACKEND", "") or ("redis" if url else "postgresql")
    prefix = getattr(settings, "RATE_LIMIT_KEY_PREFIX", DEFAULT_KEY_PREFIX)
    cache_key = (backend, url, prefix)
    limiter = _limiters.get(cache_key)
    if limiter is None:
        if backend not in LIMITERS:
            raise ImproperlyConfigured(
                f"RATE_LIMIT_BACKEND must be one of {', '.join(sorted(LIMITERS))}, not {backend!r}"
            )
        with _limiters_lock:
            limiter = _limiters.get(cache_key) or LIMITERS[backend](url, prefix)
            _limiters[cache_key] = limiter
    return limiter


# -- PostgreSQL ----------------------------------------------------------------------------

_NOW_MS = "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
# On conflict, EXCLUDED carries the request: lim = the limit, level = the cost of one
# request, updated_ms = now. `r` is the stored state.
_DRAINED = "GREATEST(r.level - GREATEST(EXCLUDED.updated_ms - r.updated_ms, 0) * EXCLUDED.lim, 0)"
_ALLOWS = f"({_DRAINED} + EXCLUDED.level <= EXCLUDED.lim * EXCLUDED.level)"
# Only constant fragments are formatted in; every value is a bound parameter.
_HIT_SQL = f"""
INSERT INTO gateway_rate_limit AS r (subject, lim, level, updated_ms, last_allowed)
SELECT v.subject, v.lim, %s, c.now_ms, true
FROM (VALUES {{values}}) AS v (subject, lim), (SELECT {_NOW_MS} AS now_ms) AS c
ORDER BY v.subject
ON CONFLICT (subject) DO UPDATE SET
    lim = EXCLUDED.lim,
    level = {_DRAINED} + CASE WHEN {_ALLOWS} THEN EXCLUDED.level ELSE 0 END,
    updated_ms = GREATEST(r.updated_ms, EXCLUDED.updated_ms),
    last_allowed = {_ALLOWS}
RETURNING r.subject, r.last_allowed, r.level
"""  # noqa: S608

# Take a free slot number, searching from a random one (any free slot will do: without an
# ORDER BY the search stops at the first, instead of checking every slot); a slot whose row
# has expired is free. Two callers can pick the same number: the loser's ON CONFLICT finds a
# live row, takes nothing, and retries (`candidate` set, `taken` null).
_ACQUIRE_SQL = """
WITH c AS (SELECT clock_timestamp() AS now),
candidate AS (
    SELECT g.n %% %(limit)s AS slot
    FROM generate_series(%(offset)s, %(offset)s + %(limit)s - 1) AS g (n)
    WHERE NOT EXISTS (
        SELECT 1 FROM gateway_concurrency_slot s, c
        WHERE s.subject = %(subject)s AND s.slot = g.n %% %(limit)s AND s.expires_at > c.now
    )
    LIMIT 1
),
taken AS (
    INSERT INTO gateway_concurrency_slot AS s (subject, slot, token, expires_at)
    SELECT %(subject)s, candidate.slot, %(token)s,
           c.now + %(ttl_ms)s * interval '1 millisecond'
    FROM candidate, c
    ON CONFLICT (subject, slot) DO UPDATE
        SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
        WHERE s.expires_at <= clock_timestamp()
    RETURNING s.slot
)
SELECT (SELECT slot FROM candidate), (SELECT slot FROM taken)
"""
# `_ACQUIRE_SQL` as common table expressions of `PostgresLimiter.admit`, searching only when
# `admitted` has its row.
_ADMIT_SLOT_CTES = """
slot_now AS (SELECT clock_timestamp() AS now),
slot_candidate AS (
    SELECT g.n %% %s AS slot
    FROM admitted, generate_series(%s, %s + %s - 1) AS g (n)
    WHERE NOT EXISTS (
        SELECT 1 FROM gateway_concurrency_slot s, slot_now c
        WHERE s.subject = %s AND s.slot = g.n %% %s AND s.expires_at > c.now
    )
    LIMIT 1
),
slot_taken AS (
    INSERT INTO gateway_concurrency_slot AS s (subject, slot, token, expires_at)
    SELECT %s, slot_candidate.slot, %s, c.now + %s * interval '1 millisecond'
    FROM slot_candidate, slot_now c
    ON CONFLICT (subject, slot) DO UPDATE
        SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
        WHERE s.expires_at <= clock_timestamp()
    RETURNING s.slot
)"""
_REFUND_SQL = (
    "UPDATE gateway_rate_limit SET level = GREATEST(level - %s, 0) WHERE subject = ANY(%s)"
)
_RELEASE_SQL = (
    "DELETE FROM gateway_concurrency_slot WHERE subject = %s AND slot = %s AND token = %s"
)
_PURGE_RATES_SQL = f"""
DELETE FROM gateway_rate_limit r USING (SELECT {_NOW_MS} AS now_ms) AS c
WHERE r.level <= GREATEST(c.now_ms - r.updated_ms, 0) * r.lim
"""  # noqa: S608
_PURGE_SLOTS_SQL = "DELETE FROM gateway_concurrency_slot WHERE expires_at <= clock_timestamp()"

_own_connections = threading.local()
_all_own_connections: weakref.WeakSet = weakref.WeakSet()
_all_own_connections_lock = threading.Lock()


def _own_connection():
    """This thread's second connection to the default database, for when the first one is
    inside a transaction. Reused like Django's own (CONN_MAX_AGE), dropped after an error."""
    conn = getattr(_own_connections, "connection", None)
    if conn is None:
        default = connections[DEFAULT_DB_ALIAS]
        conn = type(default)(dict(default.settings_dict), DEFAULT_DB_ALIAS)
        _own_connections.connection = conn
        with _all_own_connections_lock:
            _all_own_connections.add(conn)
    elif conn.connection is not None and (
        conn.errors_occurred
        or not conn.autocommit
        or (conn.close_at is not None and time.monotonic() >= conn.close_at)
    ):
        conn.close()
    return conn


def close_own_connections() -> None:
    """Close the second connections of every thread (tests, and a worker shutting down)."""
    with _all_own_connections_lock:
        own = list(_all_own_connections)
    for conn in own:
        with contextlib.suppress(Exception):  # closing a broken connection is best effort
            conn.close()


class PostgresLimiter(Limiter):
    engine = "postgresql"

    def _run(self, work: Callable):
        """Run `work(cursor)`, each of its statements committed at once, never inside the
        caller's transaction (see the module docstring)."""
        default = connections[DEFAULT_DB_ALIAS]
        own = default.in_atomic_block or not default.get_autocommit()
        conn = _own_connection() if own else default
        reused = conn.connection is not None
        try:
            return self._run_on(conn, work)
        except (OperationalError, InterfaceError):
            if not (own and reused):
                raise
            # A reused connection of ours may have died while idle: once more on a new one.
            conn.close()
            return self._run_on(conn, work)

    @staticmethod
    def _run_on(conn, work: Callable):
        with conn.prepared_cursor() as cursor:
            return work(cursor)

    def hit(self, subjects: Sequence[Subject], cost: int) -> list[tuple[bool, int]]:
        sql = _HIT_SQL.format(values=", ".join(["(%s::text, %s::bigint)"] * len(subjects)))
        params: list = [cost]
        for subject in subjects:
            params += [subject.key, subject.limit]

        def work(cursor):
            cursor.execute(sql, params)
            rows = {key: (allowed, level) for key, allowed, level in cursor.fetchall()}
            charged = [key for key, (allowed, _) in rows.items() if allowed]
            if len(charged) < len(rows) and charged:
                # Another subject refused: give back what this request was charged. A refusal
                # is rare (a subject at its limit), so the common path is one statement;
                # meanwhile a concurrent request may see these levels one request higher.
                cursor.execute(_REFUND_SQL, [cost, charged])
            return rows

        rows = self._run(work)
        return [rows[subject.key] for subject in subjects]

    def acquire_slot(self, key: str, limit: int, ttl_ms: int) -> Slot | None:
        token = str(uuid.uuid4())

        def work(cursor):
            # Each lost race means another caller took a slot, so this ends quickly.
            for _ in range(limit + 10):
                params = {
                    "subject": key,
                    "limit": limit,
                    "offset": random.randrange(limit),  # noqa: S311 - spreads, no secret
                    "token": token,
                    "ttl_ms": ttl_ms,
                }
                cursor.execute(_ACQUIRE_SQL, params)
                candidate, taken = cursor.fetchone()
                if taken is not None:
                    return Slot(self, key, token, taken)
                if candidate is None:
                    return None
            return None

        return self._run(work)

    def release_slot(self, slot: Slot) -> None:
        self._run(lambda cursor: cursor.execute(_RELEASE_SQL, [slot.key, slot.number, slot.token]))

    @staticmethod
    def combines() -> bool:
        """Whether a statement of the caller's, on the default connection, may hold the
        limiter's writes: only in autocommit, where it commits at once by itself."""
        default = connections[DEFAULT_DB_ALIAS]
        return not default.in_atomic_block and default.get_autocommit()

    def admit(
        self, subjects: Sequence[Subject], cost: int, slot: SlotRequest, then: tuple[str, list]
    ) -> tuple[list[tuple[bool, int]], tuple[int, str] | None, bool, bool]:
        """`admit` in one statement on the default connection: the rate check (`_HIT_SQL`),
        the slot's acquire (`_ACQUIRE_SQL`) when every rate allowed, and `then` when the
        slot was taken. Returns the rate outcomes, the slot taken (number, token), whether
        every slot was taken, and whether `then` ran. A slot lost to a concurrent caller
        (rare) is taken again by `acquire_slot`, and `then` is left to the caller."""
        then_sql, then_params = then
        params: list = []
        ctes = []
        if subjects:
            values = ", ".join(["(%s::text, %s::bigint)"] * len(subjects))
            ctes.append(f"rate AS ({_HIT_SQL.format(values=values)})")
            params.append(cost)
            for subject in subjects:
                params += [subject.key, subject.limit]
            ctes.append(
                "admitted AS (SELECT 1 AS one WHERE (SELECT bool_and(last_allowed) FROM rate))"
            )
            rates = "(SELECT json_agg(json_build_array(subject, last_allowed, level)) FROM rate)"
        else:
            ctes.append("admitted AS (SELECT 1 AS one)")
            rates = "NULL::json"
        limited = slot.limit is not None and slot.limit > 0
        token = str(uuid.uuid4())
        if limited:
            ctes.append(_ADMIT_SLOT_CTES)
            limit = int(slot.limit)
            offset = random.randrange(limit)  # noqa: S311 - spreads, no secret
            params += [limit, offset, offset, limit, slot.key, limit]
            params += [slot.key, token, slot.ttl_ms]
            gate, slots = (
                "slot_taken",
                "(SELECT slot FROM slot_candidate), (SELECT slot FROM slot_taken)",
            )
        else:
            gate, slots = "admitted", "NULL::int, NULL::int"
        ctes.append(f"then_ AS ({then_sql.format(gate=gate)})")
        params += then_params
        sql = f"WITH {', '.join(ctes)} SELECT {rates}, {slots}, (SELECT count(*) FROM then_)"  # noqa: S608

        def work(cursor):
            cursor.execute(sql, params)
            rows, candidate, taken, ran = cursor.fetchone()
            outcomes = {key: (allowed, int(level)) for key, allowed, level in rows or []}
            charged = [key for key, (allowed, _) in outcomes.items() if allowed]
            if len(charged) < len(outcomes) and charged:
                cursor.execute(_REFUND_SQL, [cost, charged])  # as in `hit`
            return outcomes, candidate, taken, bool(ran)

        with connections[DEFAULT_DB_ALIAS].prepared_cursor() as cursor:
            outcomes, candidate, taken, ran = work(cursor)
        ordered = [outcomes[subject.key] for subject in subjects]
        if not all(allowed for allowed, _ in ordered) or not limited:
            return ordered, None, False, ran
        if taken is not None:
            return ordered, (taken, token), False, ran
        if candidate is None:
            return ordered, None, True, False
        again = self.acquire_slot(slot.key, int(slot.limit), slot.ttl_ms)
        if again is None:
            return ordered, None, True, False
        return ordered, (again.number, again.token), False, False

    def purge_expired(self) -> int:
        def work(cursor):
            cursor.execute(_PURGE_RATES_SQL)
            deleted = cursor.rowcount
            cursor.execute(_PURGE_SLOTS_SQL)
            return deleted + cursor.rowcount

        return self._run(work)


# -- Redis ---------------------------------------------------------------------------------

_REDIS_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
# KEYS: one key per subject. ARGV[1]: the cost of a request; ARGV[1 + i]: the limit of
# KEYS[i]. A key holds "level:updated_ms" and expires when its level has drained.
_HIT_LUA = (
    _REDIS_NOW_MS
    + """
local cost = tonumber(ARGV[1])
local levels, updated, out = {}, {}, {}
local all_allowed = true
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[i + 1])
    local level, mark = 0, now
    local state = redis.call('GET', key)
    if state then
        local used, at = string.match(state, '^(%d+):(%d+)$')
        if used then
            at = tonumber(at)
            level = math.max(tonumber(used) - math.max(now - at, 0) * limit, 0)
            mark = math.max(at, now)
        end
    end
    if level + cost <= limit * cost then
        level = level + cost
        out[2 * i - 1] = 1
    else
        all_allowed = false
        out[2 * i - 1] = 0
    end
    levels[i], updated[i], out[2 * i] = level, mark, level
end
if all_allowed then
    for i, key in ipairs(KEYS) do
        local ttl = math.ceil(levels[i] / tonumber(ARGV[i + 1])) + 1
        redis.call('SET', key, string.format('%.0f:%.0f', levels[i], updated[i]), 'PX', ttl)
    end
end
return out
"""
)
# KEYS[1]: the subject's sorted set of slot tokens scored by expiry. ARGV: limit, ttl, token.
_ACQUIRE_LUA = (
    _REDIS_NOW_MS
    + """
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then
    return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""
)

_redis_clients: dict[str, redis.Redis] = {}


def redis_client(url: str) -> redis.Redis:
    """One client (and connection pool) per URL per process. Short timeouts and a single
    retry: a limiter that waits on a sick Redis would stall every call."""
    client = _redis_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        client = _redis_clients.setdefault(url, client)
    return client


class RedisLimiter(Limiter):
    """Keys live under `prefix`; on Redis Cluster give the prefix a hash tag (e.g.
    "{limits}:") so that a key's and its team's state share a slot for the script."""

    engine = "redis"

    def __init__(self, url: str, prefix: str, *, fallback: Limiter):
        self.client = redis_client(url)
        self.prefix = prefix
        self.fallback = fallback
        self._hit = self.client.register_script(_HIT_LUA)
        self._acquire = self.client.register_script(_ACQUIRE_LUA)
        self._down_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._available():
            logger.warning(
                "Redis failed for rate limits (%s); using PostgreSQL for %ss",
                exc,
                REDIS_RETRY_AFTER_SECONDS,
            )
        self._down_until = time.monotonic() + REDIS_RETRY_AFTER_SECONDS

    def hit(self, subjects: Sequence[Subject], cost: int) -> list[tuple[bool, int]]:
        if self._available():
            keys = [f"{self.prefix}rate:{subject.key}" for subject in subjects]
            try:
                out = self._hit(keys=keys, args=[cost, *(s.limit for s in subjects)])
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                return [(bool(out[i]), int(out[i + 1])) for i in range(0, len(out), 2)]
        return self.fallback.hit(subjects, cost)

    def acquire_slot(self, key: str, limit: int, ttl_ms: int) -> Slot | None:
        if self._available():
            token = str(uuid.uuid4())
            try:
                taken = self._acquire(
                    keys=[f"{self.prefix}slots:{key}"], args=[limit, ttl_ms, token]
                )
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                return Slot(self, key, token) if taken else None
        return self.fallback.acquire_slot(key, limit, ttl_ms)

    def release_slot(self, slot: Slot) -> None:
        self.client.zrem(f"{self.prefix}slots:{slot.key}", slot.token)

    def purge_expired(self) -> int:
        return self.fallback.purge_expired()
