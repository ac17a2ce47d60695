"""Rate and concurrency limits, on a real PostgreSQL and a real Redis (no mocks).

Every test that touches state runs against both backends (`engine` fixture), each test with
its own subject ids and Redis key prefix, on Redis database TEST_REDIS_DB_URL (13 unless the
environment says otherwise), and cleans up what it wrote. The limiter's writes are committed
at once by design (never inside the caller's transaction), so cleanup is explicit.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis
from django.db import connections, transaction
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from marketplace.core import limits
from marketplace.core.limits import (
    ConcurrencyLimitExceeded,
    RateDecision,
    check_rates,
    concurrency_slot,
    rate_limit_headers,
)

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
RATE_LIMIT = re.compile(r"^limit=(\d+), remaining=(\d+), reset=(\d+)$")


def _redis_problem() -> str | None:
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError as exc:
        return str(exc)
    return None


@dataclass
class Engine:
    name: str
    tag: str
    prefix: str

    def id(self, what: str) -> str:
        return f"{what}-{self.tag}"


def _configure(settings, name: str) -> Engine:
    tag = uuid.uuid4().hex[:12]
    engine = Engine(name, tag, f"test-limits-{tag}:")
    settings.RATE_LIMIT_WINDOW_SECONDS = 60
    settings.RATE_LIMIT_KEY_PREFIX = engine.prefix
    settings.RATE_LIMIT_BACKEND = name
    if name == "redis":
        problem = _redis_problem()
        if problem:
            pytest.skip(f"Redis is not reachable at {TEST_REDIS_URL}: {problem}")
        settings.RATE_LIMIT_REDIS_URL = TEST_REDIS_URL
    return engine


def _clean(engine: Engine) -> None:
    if engine.name == "redis":
        client = limits.redis_client(TEST_REDIS_URL)
        keys = list(client.scan_iter(match=f"{engine.prefix}*"))
        if keys:
            client.delete(*keys)
    # Committed rows of this test (the PostgreSQL engine, or Redis' fallback), deleted on a
    # connection outside the test's transaction.
    with limits._own_connection().cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")  # a lock held by the test fails, not hangs
        cursor.execute("DELETE FROM gateway_rate_limit WHERE subject LIKE %s", [f"%{engine.tag}"])
        cursor.execute(
            "DELETE FROM gateway_concurrency_slot WHERE subject LIKE %s", [f"%{engine.tag}"]
        )
    limits.close_own_connections()


@pytest.fixture(params=["postgresql", "redis"])
def engine(request, settings, db):
    configured = _configure(settings, request.param)
    yield configured
    _clean(configured)


@pytest.fixture
def postgresql(settings, db):
    configured = _configure(settings, "postgresql")
    yield configured
    _clean(configured)


@pytest.fixture
def redis_engine(settings, db):
    configured = _configure(settings, "redis")
    yield configured
    _clean(configured)


def _in_threads(count: int, work):
    """Run work(i) in `count` threads released together; each closes its connections."""
    barrier = threading.Barrier(count)

    def run(i):
        try:
            barrier.wait(timeout=10)
            return work(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


# -- rates ---------------------------------------------------------------------------------


def test_allows_the_limit_then_refuses_with_remaining_and_reset(engine):
    key = [("key", engine.id("k"), 5)]  # one request frees every 12 s
    decisions = [check_rates(key)[0] for _ in range(5)]
    assert [d.allowed for d in decisions] == [True] * 5
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    assert {d.reset_seconds for d in decisions} == {12}
    assert {(d.limit, d.policy, d.name) for d in decisions} == {(5, "5;w=60", "key")}

    refused = [check_rates(key)[0] for _ in range(3)]
    assert all(not d.allowed and d.remaining == 0 for d in refused)
    # Refused requests charge nothing, so they never push the reset further away.
    assert {d.reset_seconds for d in refused} == {12}


def test_requests_free_one_by_one_as_the_window_slides(engine, settings):
    settings.RATE_LIMIT_WINDOW_SECONDS = 2  # limit 4: one request frees every 0.5 s
    key = [("key", engine.id("k"), 4)]
    first = check_rates(key)[0]
    assert (first.remaining, first.reset_seconds, first.policy) == (3, 1, "4;w=2")
    assert [check_rates(key)[0].allowed for _ in range(4)] == [True, True, True, False]

    time.sleep(0.75)  # one request has freed, not two and not the whole window
    again = check_rates(key)[0]
    assert (again.allowed, again.remaining, again.reset_seconds) == (True, 0, 1)
    assert not check_rates(key)[0].allowed

    time.sleep(2.05)  # a whole window later everything has freed
    after = [check_rates(key)[0] for _ in range(5)]
    assert [d.allowed for d in after] == [True, True, True, True, False]
    assert [d.remaining for d in after] == [3, 2, 1, 0, 0]


def test_team_limit_bites_first_and_refusals_charge_no_other_subject(engine):
    subjects = [("key", engine.id("k"), 10), ("team", engine.id("t"), 3)]
    for expected_team_remaining in (2, 1, 0):
        key, team = check_rates(subjects)
        assert key.allowed and team.allowed
        assert team.remaining == expected_team_remaining
    assert key.remaining == 7

    for _ in range(3):
        key, team = check_rates(subjects)
        assert (team.allowed, team.name, team.remaining) == (False, "team", 0)
        assert key.allowed and key.remaining == 7  # the key was not charged
        headers = rate_limit_headers([key, team])
        assert headers["RateLimit-Policy"] == "3;w=60"
        assert headers["RateLimit"] == f"limit=3, remaining=0, reset={team.reset_seconds}"
        assert headers["Retry-After"] == str(team.reset_seconds) == "20"

    # Without the team limit the key has exactly its 3 charges behind it.
    (alone,) = check_rates([("key", engine.id("k"), 10), ("team", engine.id("t"), 0)])
    assert (alone.allowed, alone.remaining) == (True, 6)


def test_a_lowered_limit_refuses_until_the_excess_has_drained(engine):
    for _ in range(5):
        assert check_rates([("team", engine.id("t"), 10)])[0].allowed
    (lowered,) = check_rates([("team", engine.id("t"), 2)])
    # 5 requests in use, room for 2: one more frees once 4 have drained at 2 per minute.
    assert (lowered.allowed, lowered.remaining, lowered.reset_seconds) == (False, 0, 120)


def test_unlimited_subjects_are_skipped(engine):
    assert check_rates([]) == []
    assert check_rates([("key", engine.id("k"), 0), ("team", engine.id("t"), -1)]) == []
    assert rate_limit_headers([]) == {}
    decisions = check_rates([("key", engine.id("k"), 0), ("team", engine.id("t"), 2)])
    assert [(d.name, d.remaining) for d in decisions] == [("team", 1)]


def test_a_subject_given_twice_is_a_programming_error(engine):
    with pytest.raises(ValueError, match="twice"):
        check_rates([("key", engine.id("k"), 5), ("key", engine.id("k"), 7)])


@pytest.mark.parametrize("with_team", [False, True], ids=["key", "key+team"])
def test_concurrent_requests_never_exceed_the_limit(engine, settings, with_team):
    settings.RATE_LIMIT_WINDOW_SECONDS = 3600  # nothing frees during the test
    team = ("team", engine.id("t"), 50)

    def requests(i):
        key = ("key", engine.id(f"k{i}") if with_team else engine.id("k"), 100 if with_team else 50)
        subjects = [key, team] if with_team else [key]
        return sum(all(d.allowed for d in check_rates(subjects)) for _ in range(10))

    allowed = _in_threads(20, requests)
    assert sum(allowed) == 50
    if with_team:
        # Each key was charged exactly for the requests it had allowed, never for refusals.
        for i, count in enumerate(allowed):
            (probe,) = check_rates([("key", engine.id(f"k{i}"), 100)])
            assert probe.remaining == 100 - count - 1


def test_counts_commit_at_once_even_inside_the_callers_transaction(postgresql):
    subjects = [("key", postgresql.id("k"), 10), ("team", postgresql.id("t"), 10)]
    with pytest.raises(RuntimeError), transaction.atomic():
        assert [d.remaining for d in check_rates(subjects)] == [9, 9]
        # Another worker is neither blocked by a lock held for our transaction nor blind
        # to the charge.
        seen = []
        other = threading.Thread(
            target=_in_threads, args=(1, lambda _: seen.append(check_rates(subjects))), daemon=True
        )
        other.start()
        other.join(timeout=5)
        assert not other.is_alive(), "blocked by a lock held for the caller's transaction"
        assert [d.remaining for d in seen[0]] == [8, 8]
        raise RuntimeError("the caller's transaction rolls back")
    # ...and the caller's rollback does not undo the charges.
    assert [d.remaining for d in check_rates(subjects)] == [7, 7]


def test_a_dead_second_connection_is_replaced(postgresql):
    subjects = [("key", postgresql.id("k"), 10)]
    with transaction.atomic():  # so the limiter uses its own connection
        assert check_rates(subjects)[0].remaining == 9
        pid = limits._own_connection().connection.info.backend_pid
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        assert check_rates(subjects)[0].remaining == 8
        assert limits._own_connection().connection.info.backend_pid != pid


def test_purge_expired_deletes_drained_state_and_expired_slots(postgresql, settings):
    settings.RATE_LIMIT_WINDOW_SECONDS = 1
    check_rates([("key", postgresql.id("drained"), 10)])  # drains in 0.1 s
    check_rates([("key", postgresql.id("busy"), 1)])  # drains in 1 s
    leaked = concurrency_slot("team", postgresql.id("t"), 1, ttl_seconds=0.1)
    leaked.__enter__()
    time.sleep(0.2)
    assert limits.purge_expired() >= 2
    del leaked
    with limits._own_connection().cursor() as cursor:
        cursor.execute(
            "SELECT subject FROM gateway_rate_limit WHERE subject LIKE %s "
            "UNION ALL SELECT subject FROM gateway_concurrency_slot WHERE subject LIKE %s",
            [f"%{postgresql.tag}", f"%{postgresql.tag}"],
        )
        assert [row[0] for row in cursor.fetchall()] == [f"key:{postgresql.id('busy')}"]


def test_redis_state_expires_by_itself(redis_engine):
    client = limits.redis_client(TEST_REDIS_URL)
    check_rates([("key", redis_engine.id("k"), 10)])  # one request of 10/min drains in 6 s
    assert 5000 < client.pttl(f"{redis_engine.prefix}rate:key:{redis_engine.id('k')}") <= 6001
    with concurrency_slot("team", redis_engine.id("t"), 2, ttl_seconds=30):
        ttl = client.pttl(f"{redis_engine.prefix}slots:team:{redis_engine.id('t')}")
        assert 29000 < ttl <= 30000


def test_redis_down_falls_back_to_postgresql(settings, db, caplog):
    engine = _configure(settings, "postgresql")
    settings.RATE_LIMIT_BACKEND = "redis"
    settings.RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        key = [("key", engine.id("k"), 2)]
        assert [check_rates(key)[0].allowed for _ in range(3)] == [True, True, False]
        assert "Redis failed" in caplog.text
        with (
            concurrency_slot("team", engine.id("t"), 1, ttl_seconds=30),
            pytest.raises(ConcurrencyLimitExceeded),
            concurrency_slot("team", engine.id("t"), 1, ttl_seconds=30),
        ):
            pass
    finally:
        _clean(engine)


# -- headers -------------------------------------------------------------------------------


def test_headers_name_the_binding_decision():
    key = RateDecision(True, 60, 12, 1, "60;w=60", "key")
    team = RateDecision(True, 600, 3, 1, "600;w=60", "team")
    assert rate_limit_headers([key, team]) == {
        "RateLimit-Policy": "600;w=60",
        "RateLimit": "limit=600, remaining=3, reset=1",
    }
    refused = RateDecision(False, 600, 0, 17, "600;w=60", "team")
    assert rate_limit_headers([key, refused]) == {
        "RateLimit-Policy": "600;w=60",
        "RateLimit": "limit=600, remaining=0, reset=17",
        "Retry-After": "17",
    }


@st.composite
def decisions(draw):
    allowed = draw(st.booleans())
    limit = draw(st.integers(1, 10**9))
    window = draw(st.integers(1, 86400))
    return RateDecision(
        allowed=allowed,
        limit=limit,
        remaining=draw(st.integers(0, limit - 1)) if allowed else 0,
        reset_seconds=draw(st.integers(0 if allowed else 1, 10**6)),
        policy=f"{limit};w={window}",
        name=draw(st.sampled_from(["key", "user", "team"])),
    )


@hypothesis_settings(database=None)
@given(st.lists(decisions(), max_size=5))
def test_headers_property(items):
    headers = rate_limit_headers(items)
    if not items:
        assert headers == {}
        return
    refused = [d for d in items if not d.allowed]
    expected_keys = {"RateLimit-Policy", "RateLimit"} | ({"Retry-After"} if refused else set())
    assert set(headers) == expected_keys
    for value in headers.values():
        assert value.isascii() and value.isprintable()

    limit, remaining, reset = map(int, RATE_LIMIT.match(headers["RateLimit"]).groups())
    binding = [
        d
        for d in items
        if (d.limit, d.remaining, d.reset_seconds, d.policy)
        == (limit, remaining, reset, headers["RateLimit-Policy"])
    ]
    assert binding, "the headers describe one of the decisions"
    assert re.fullmatch(r"\d+;w=\d+", headers["RateLimit-Policy"])
    assert remaining == min(d.remaining for d in items)
    if refused:
        retry_after = int(headers["Retry-After"])
        assert retry_after >= 1
        assert retry_after == max(d.reset_seconds for d in refused) == reset
        assert any(not d.allowed for d in binding)


# -- concurrency ---------------------------------------------------------------------------


def test_the_slot_after_the_last_is_refused_until_one_is_released(engine):
    team = engine.id("t")
    holding, release = threading.Barrier(4), threading.Event()

    def hold(_):
        with concurrency_slot("team", team, 3, ttl_seconds=30):
            holding.wait(timeout=10)
            release.wait(timeout=10)

    with ThreadPoolExecutor(1) as pool:
        holders = pool.submit(_in_threads, 3, hold)
        holding.wait(timeout=10)  # three threads hold the three slots
        with (
            pytest.raises(ConcurrencyLimitExceeded) as refused,
            concurrency_slot("team", team, 3, ttl_seconds=30),
        ):
            pass
        assert (refused.value.name, refused.value.limit) == ("team", 3)
        assert refused.value.status_code == 429
        release.set()
        holders.result(timeout=10)
    with concurrency_slot("team", team, 3, ttl_seconds=30):
        pass


def test_a_slot_is_released_when_the_block_raises(engine):
    team = engine.id("t")
    with pytest.raises(ValueError), concurrency_slot("team", team, 1, ttl_seconds=30):
        raise ValueError("the model crashed")
    with concurrency_slot("team", team, 1, ttl_seconds=30):
        pass


def test_a_leaked_slot_expires(engine):
    team = engine.id("t")
    # Entered and never left, as by a process that died (kept referenced: a collected
    # generator would run its `finally`).
    leaked = concurrency_slot("team", team, 1, ttl_seconds=0.5)
    leaked.__enter__()
    with (
        pytest.raises(ConcurrencyLimitExceeded),
        concurrency_slot("team", team, 1, ttl_seconds=30),
    ):
        pass
    time.sleep(0.6)
    with concurrency_slot("team", team, 1, ttl_seconds=30):
        pass


def test_unlimited_concurrency_takes_no_slot(engine):
    with (
        concurrency_slot("team", engine.id("t"), 0, ttl_seconds=30),
        concurrency_slot("team", engine.id("t"), 0, ttl_seconds=30),
    ):
        pass
