"""The warm pool: reuse, spreading over processes, waiting beyond the per-version limit,
LRU eviction when full, restart after a crash, reservations and idle eviction."""

from __future__ import annotations

import threading
import time

import pytest

from execution.pool import PoolBusy, PoolSettings, WarmPool
from execution.process import ModelCrashed
from execution.runtimes import ModelSpec, get_runtime
from execution.sandbox import sandbox_enabled

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MODEL = """
import os
import time
import uuid

PROCESS = uuid.uuid4().hex  # pids repeat across sandboxes: each has its own PID namespace


def apply(data):
    if data.get("die"):
        os._exit(7)
    time.sleep(data.get("sleep", 0))
    return {"pid": PROCESS, "tag": data.get("tag")}
"""


@pytest.fixture
def spec_factory(tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()

    def make(name: str):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "predict.py").write_text(MODEL)
        spec = ModelSpec("python", "predict.py:apply", folder)
        launch = get_runtime("python").prepare(spec, log=lambda _: None).launch
        return lambda: launch

    return make


def _pool(**kwargs) -> WarmPool:
    return WarmPool(PoolSettings(**kwargs), sandbox=sandbox_enabled())


def test_reuse_then_spread_then_wait(spec_factory):
    pool = _pool(max_processes=4, max_per_version=2)
    factory = spec_factory("a")
    try:
        first = pool.call("a", factory, "json", {}, timeout=30)
        second = pool.call("a", factory, "json", {}, timeout=30)
        assert first.cold_start and not second.cold_start
        assert first.result.result["pid"] == second.result.result["pid"]

        results = []

        def slow_call():
            results.append(pool.call("a", factory, "json", {"sleep": 1}, timeout=30))

        threads = [threading.Thread(target=slow_call) for _ in range(3)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        pids = {r.result.result["pid"] for r in results}
        assert len(pids) == 2  # spread over the two processes the version may have
        assert elapsed >= 2  # the third call waited for a free process
        assert pool.stats()["processes"] == 2
    finally:
        pool.close()


def test_waiting_past_the_timeout_is_busy(spec_factory):
    pool = _pool(max_processes=2, max_per_version=1)
    factory = spec_factory("a")
    try:
        blocker = threading.Thread(
            target=lambda: pool.call("a", factory, "json", {"sleep": 2}, timeout=30)
        )
        blocker.start()
        time.sleep(0.5)
        with pytest.raises(PoolBusy):
            pool.call("a", factory, "json", {}, timeout=0.5)
        blocker.join()
    finally:
        pool.close()


def test_least_recently_used_is_evicted_when_full(spec_factory):
    pool = _pool(max_processes=2, max_per_version=1)
    a, b, c = spec_factory("a"), spec_factory("b"), spec_factory("c")
    try:
        pool.call("a", a, "json", {}, timeout=30)
        pool.call("b", b, "json", {}, timeout=30)
        pool.call("a", a, "json", {}, timeout=30)  # a is now more recent than b
        pool.call("c", c, "json", {}, timeout=30)
        assert set(pool.stats()["versions"]) == {"a", "c"}
    finally:
        pool.close()


def test_a_crash_is_reported_and_the_next_call_gets_a_fresh_process(spec_factory):
    pool = _pool()
    factory = spec_factory("a")
    try:
        before = pool.call("a", factory, "json", {}, timeout=30).result.result["pid"]
        with pytest.raises(ModelCrashed, match="code 7"):
            pool.call("a", factory, "json", {"die": True}, timeout=30)
        after = pool.call("a", factory, "json", {}, timeout=30)
        assert after.cold_start and after.result.result["pid"] != before
    finally:
        pool.close()


def test_reserved_processes_stay_warm_and_come_back(spec_factory):
    pool = _pool(max_processes=4, max_per_version=2, idle_seconds=0)
    factory = spec_factory("a")
    try:
        assert pool.reserve("a", factory, 2) == 2
        assert pool.evict_idle() == 0
        call = pool.call("a", factory, "json", {}, timeout=30)
        assert not call.cold_start  # a caller never meets a cold start
        with pytest.raises(ModelCrashed):
            pool.call("a", factory, "json", {"die": True}, timeout=30)
        assert pool.stats()["processes"] == 1
        pool.replenish_reservations()
        assert pool.stats()["processes"] == 2
    finally:
        pool.close()


def test_idle_processes_are_evicted(spec_factory):
    pool = _pool(idle_seconds=0.2)
    factory = spec_factory("a")
    try:
        pool.call("a", factory, "json", {}, timeout=30)
        time.sleep(0.4)
        assert pool.evict_idle() == 1 and pool.stats()["processes"] == 0
    finally:
        pool.close()


def test_cancel_kills_the_running_call(spec_factory):
    pool = _pool()
    factory = spec_factory("a")
    errors = []
    try:

        def long_call():
            try:
                pool.call("a", factory, "json", {"sleep": 30}, timeout=60, request_id="r-1")
            except ModelCrashed as exc:
                errors.append(exc)

        thread = threading.Thread(target=long_call)
        thread.start()
        deadline = time.monotonic() + 10
        while not pool.cancel("r-1") and time.monotonic() < deadline:
            time.sleep(0.05)
        thread.join(10)
        assert errors and not thread.is_alive()
    finally:
        pool.close()
