"""A pool of warm model processes: one or more per version, started on first call, reused,
restarted after a crash, evicted when idle or when the pool is full (least recently used
first). Concurrent calls to one version are spread over its processes up to a per-version
limit and wait beyond it. An owner can reserve N always-warm processes of a version.

One pool serves a whole host: the runner service (runner_service.py) owns it, and the web
and Celery workers reach it through its socket.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .process import (
    CallResult,
    LaunchSpec,
    ModelProcess,
    ModelProcessError,
    ModelStartError,
    ModelTimeout,
)

logger = logging.getLogger(__name__)


class PoolBusy(Exception):
    """Every process of the version stayed busy for the whole wait."""


@dataclass
class PoolSettings:
    max_processes: int = 16
    max_per_version: int = 2
    idle_seconds: float = 600.0
    start_timeout: float = 300.0


@dataclass
class _Worker:
    process: ModelProcess
    key: str
    busy: bool = False
    last_used: float = field(default_factory=time.monotonic)
    request_id: str | None = None


@dataclass
class PoolCall:
    result: CallResult
    cold_start: bool
    pid: int | None


class WarmPool:
    def __init__(self, settings: PoolSettings | None = None, *, sandbox: bool = True):
        self.settings = settings or PoolSettings()
        self.sandbox = sandbox
        self._workers: list[_Worker] = []
        self._starting: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._specs: dict[str, Callable[[], LaunchSpec]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self.cold_starts = 0
        # Processes are started from these long-lived threads: bubblewrap's --die-with-parent
        # (PR_SET_PDEATHSIG) fires when the *thread* that forked it exits, so a process
        # started from a short-lived request thread would die with that request.
        self._spawner = ThreadPoolExecutor(max_workers=4, thread_name_prefix="model-spawner")

    # -- calls ------------------------------------------------------------------------------

    def call(
        self,
        key: str,
        spec_factory: Callable[[], LaunchSpec],
        content_type: str,
        data,
        *,
        timeout: float,
        request_id: str | None = None,
        credential: str | None = None,
    ) -> PoolCall:
        """Run one request on a warm process of version `key`, starting one if needed.
        Waiting for a free process counts against `timeout`. `credential` is what the model
        acts with on the platform's API during this call (ModelProcess.call)."""
        deadline = time.monotonic() + timeout
        self._specs[key] = spec_factory
        worker, cold = self._acquire(key, spec_factory, deadline)
        worker.request_id = request_id
        try:
            remaining = max(0.001, deadline - time.monotonic())
            result = worker.process.call(
                content_type, data, timeout=remaining, credential=credential
            )
        except ModelTimeout as exc:
            self._discard(worker)
            # Say the caller's timeout, not what was left of it after waiting for a process.
            raise ModelTimeout(
                f"the model did not answer within {timeout:g} seconds; it was stopped",
                output=exc.output,
            ) from None
        except ModelProcessError:
            self._discard(worker)
            raise
        self._release(worker)
        return PoolCall(result, cold, worker.process.pid)

    def cancel(self, request_id: str) -> bool:
        """Kill the process running `request_id`; its caller gets a crash error."""
        with self._cond:
            worker = next((w for w in self._workers if w.request_id == request_id and w.busy), None)
        if worker is None:
            return False
        worker.process.stop()
        return True

    def reserve(self, key: str, spec_factory: Callable[[], LaunchSpec], count: int) -> int:
        """Keep `count` processes of `key` always warm (never evicted when idle). Starts the
        missing ones now; returns how many are warm."""
        count = max(0, min(count, self.settings.max_per_version))
        self._specs[key] = spec_factory
        with self._cond:
            self._reserved[key] = count
            missing = count - sum(1 for w in self._workers if w.key == key)
        for _ in range(max(0, missing)):
            worker = self._start(key, spec_factory)
            self._release(worker)
        with self._cond:
            return sum(1 for w in self._workers if w.key == key)

    def reserved(self) -> dict[str, int]:
        with self._cond:
            return {k: v for k, v in self._reserved.items() if v}

    # -- maintenance --------------------------------------------------------------------------

    def evict_idle(self) -> int:
        now = time.monotonic()
        victims = []
        with self._cond:
            for worker in list(self._workers):
                keep = self._reserved.get(worker.key, 0)
                alive_of_key = sum(1 for w in self._workers if w.key == worker.key)
                if (
                    not worker.busy
                    and now - worker.last_used > self.settings.idle_seconds
                    and alive_of_key > keep
                ):
                    self._workers.remove(worker)
                    victims.append(worker)
        for worker in victims:
            worker.process.stop()
        return len(victims)

    def replenish_reservations(self) -> None:
        """Restart reserved processes that died, so reserved versions never go cold."""
        for key, count in list(self._reserved.items()):
            factory = self._specs.get(key)
            if factory is None:
                continue
            with self._cond:
                have = sum(1 for w in self._workers if w.key == key) + self._starting.get(key, 0)
            for _ in range(count - have):
                try:
                    self._release(self._start(key, factory))
                except ModelProcessError:
                    logger.exception("could not restart reserved process for %s", key)

    def stats(self) -> dict:
        with self._cond:
            by_key: dict[str, dict] = {}
            for worker in self._workers:
                entry = by_key.setdefault(
                    worker.key,
                    {"processes": 0, "busy": 0, "reserved": self._reserved.get(worker.key, 0)},
                )
                entry["processes"] += 1
                entry["busy"] += int(worker.busy)
            return {
                "processes": len(self._workers),
                "busy": sum(1 for w in self._workers if w.busy),
                "max_processes": self.settings.max_processes,
                "max_per_version": self.settings.max_per_version,
                "cold_starts": self.cold_starts,
                "versions": by_key,
            }

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._workers = self._workers, []
            self._cond.notify_all()
        for worker in workers:
            worker.process.stop()
        self._spawner.shutdown(wait=False)

    # -- internals -------------------------------------------------------------------------------

    def _acquire(self, key, spec_factory, deadline) -> tuple[_Worker, bool]:
        with self._cond:
            while True:
                if self._closed:
                    raise PoolBusy("the runner is shutting down")
                idle = [w for w in self._workers if w.key == key and not w.busy]
                for worker in idle:
                    if worker.process.alive:
                        worker.busy = True
                        return worker, False
                    self._workers.remove(worker)  # died while idle: forget it
                mine = sum(1 for w in self._workers if w.key == key) + self._starting.get(key, 0)
                if mine < self.settings.max_per_version and self._make_room_locked():
                    self._starting[key] = self._starting.get(key, 0) + 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolBusy(
                        f"every process of this version stayed busy "
                        f"({self.settings.max_per_version} at most)"
                    )
                self._cond.wait(timeout=min(remaining, 1.0))
        try:
            worker = self._start(key, spec_factory, counted=True)
        finally:
            with self._cond:
                self._starting[key] -= 1
        return worker, True

    def _make_room_locked(self) -> bool:
        total = len(self._workers) + sum(self._starting.values())
        if total < self.settings.max_processes:
            return True
        idle = [w for w in self._workers if not w.busy]
        evictable = [
            w
            for w in idle
            if sum(1 for x in self._workers if x.key == w.key) > self._reserved.get(w.key, 0)
        ] or idle
        if not evictable:
            return False
        victim = min(evictable, key=lambda w: w.last_used)
        self._workers.remove(victim)
        threading.Thread(target=victim.process.stop, daemon=True).start()
        return True

    def _start(self, key, spec_factory, *, counted: bool = False) -> _Worker:
        process = ModelProcess(spec_factory(), sandbox=self.sandbox, api_access=True)
        try:
            self._spawner.submit(process.start, timeout=self.settings.start_timeout).result()
        except ModelStartError:
            with self._cond:
                self._cond.notify_all()
            raise
        worker = _Worker(process=process, key=key, busy=True)
        with self._cond:
            self._workers.append(worker)
            self.cold_starts += 1
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            worker.busy = False
            worker.request_id = None
            worker.last_used = time.monotonic()
            if not worker.process.alive and worker in self._workers:
                self._workers.remove(worker)
            self._cond.notify_all()

    def _discard(self, worker: _Worker) -> None:
        worker.process.stop()
        with self._cond:
            if worker in self._workers:
                self._workers.remove(worker)
            self._cond.notify_all()
