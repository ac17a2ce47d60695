"""Load and faults on a whole platform (`manage.py run_platform`, what `make run` starts, in
child processes): a load generator of concurrent calls, the faults injected into the
platform's own processes and servers while it runs, and the final accounting check.

Used by tests/faults/test_load_and_faults.py (short, bounded form) and by
bench/load_faults.py (long form, with latency and throughput figures).

The platform runs on its own embedded PostgreSQL (under its own var directory) and, where
`redis-server` is installed, on a private Redis started here on a free port as its broker;
otherwise its broker is the embedded one (kombu's SQLAlchemy transport on that same
PostgreSQL). Nothing here ever touches a server it did not start.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg

from bench._platform import percentile  # the other benchmarks' own, one definition
from marketplace.embedded import EmbeddedPostgres
from tests.live_platform import Platform, demo_key, free_port, get_json, publish_with_cli

MODEL_NAME = "loadnap"
# Sleeps as asked, returns the number it was given: a result that proves it was this call's.
MODEL_CODE = (
    "import time\n\n"
    "def apply(data):\n"
    "    if not isinstance(data, dict):\n"
    "        return data\n"
    "    time.sleep(float(data.get('sleep', 0)))\n"
    "    return {'n': data['n']}\n"
)
FINAL_STATUSES = ("succeeded", "failed", "timeout", "canceled")
# Reaper settings given to the platform: an abandoned call gets its final status within
# its timeout + REAP_GRACE + REAP_INTERVAL (plus a beat tick), not hours later.
REAP_GRACE_SECONDS = 3
REAP_INTERVAL_SECONDS = 4
QUEUED_LIMIT_SECONDS = 30
# A client waits at most the call's timeout plus this before calling the request hung.
HANG_MARGIN_SECONDS = 15


# -- the broker ---------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own on a free loopback port, its data in `directory` (append
    only file, fsync on every write, so a restart loses no queued message)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            stdout=(self.directory / "redis.log").open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._answers():
                return
            time.sleep(0.1)
        raise RuntimeError("the private redis-server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _answers(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


# -- the platform ---------------------------------------------------------------------------------


class FaultPlatform:
    """A whole platform with a small fast model published, and handles on what the faults
    need: its process tree, its PostgreSQL, its broker."""

    def __init__(self, directory: Path, *, broker: str = "auto", extra_env: dict | None = None):
        """`broker`: "redis" (a private redis-server), "embedded" (the platform's own, in
        its PostgreSQL) or "auto" (redis where redis-server is installed)."""
        self.directory = directory
        self.var_dir = directory / "var"
        if broker == "auto":
            broker = "redis" if PrivateRedis.available() else "embedded"
        self.redis = PrivateRedis(directory / "redis") if broker == "redis" else None
        env = {
            "GATEWAY_REAP_GRACE_SECONDS": str(REAP_GRACE_SECONDS),
            "GATEWAY_REAP_INTERVAL_SECONDS": str(REAP_INTERVAL_SECONDS),
            "GATEWAY_QUEUED_LIMIT_SECONDS": str(QUEUED_LIMIT_SECONDS),
            # The load is the point: no rate limit may turn calls away.
            "RATE_LIMIT_PER_KEY_PER_MINUTE": "0",
            "TEAM_RATE_LIMIT_PER_MINUTE": "0",
            "TEAM_CONCURRENCY_LIMIT": "0",
            "RUNNER_MAX_PER_VERSION": "4",
            **(extra_env or {}),
        }
        if self.redis is not None:
            self.redis.start()
            env["CELERY_BROKER_URL"] = self.redis.url
        try:
            self.platform = Platform(self.var_dir, env)
        except BaseException:
            if self.redis is not None:
                self.redis.stop()
            raise
        self.database = EmbeddedPostgres(self.var_dir)
        self.secret = ""

    @property
    def base(self) -> str:
        return self.platform.base

    @property
    def broker(self) -> str:
        return "redis (private)" if self.redis is not None else "embedded (PostgreSQL)"

    def start(self) -> None:
        self.platform.wait_ready(timeout=180)
        self.secret = demo_key(self.platform)
        publish_with_cli(
            self.platform,
            self.secret,
            self.directory,
            name=MODEL_NAME,
            sample_input="0",
            predict=MODEL_CODE,
        )
        # Warm the model's processes so the first measured calls are not cold starts.
        for n in range(4):
            status, body = post_call(self.base, self.secret, {"n": n}, timeout=60)
            assert status == 200 and body.get("result") == {"n": n}, (status, body)

    def stop(self) -> None:
        try:
            if self.platform.process.poll() is None:
                self.platform.interrupt()
        finally:
            if self.redis is not None:
                self.redis.stop()

    def output(self) -> str:
        return self.platform.output()

    # -- processes ---------------------------------------------------------------------------

    def children(self) -> list[psutil.Process]:
        """The supervisor's direct children: runner, gunicorn master, the Celery worker,
        the Celery worker of calls and Celery beat."""
        return psutil.Process(self.platform.process.pid).children()

    def child(self, name: str) -> psutil.Process:
        marker = {
            "runner": "run_runner",
            "web": "gunicorn",
            "worker": "worker@",
            "calls": "calls@",
            "beat": "celerybeat-schedule",
        }[name]
        for process in self.children():
            with contextlib.suppress(psutil.Error):
                if any(marker in part for part in process.cmdline()):
                    return process
        raise LookupError(f"no {name} process under the platform")

    def model_processes(self) -> list[psutil.Process]:
        """The model processes the runner started (the leaves of its tree)."""
        runner = self.child("runner")
        found = []
        for process in runner.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if not process.children():
                    found.append(process)
        return found

    def database_url(self) -> str:
        return self.database.url()


# -- faults -----------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    started: float = 0.0  # seconds since the load started
    ended: float = 0.0  # when the injection (and any outage it holds) was over
    detail: str = ""


def _kill(processes: list[psutil.Process]) -> list[int]:
    killed = []
    for process in processes:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
            killed.append(process.pid)
    return killed


def kill_model_processes(platform: FaultPlatform, outage: float) -> str:
    killed = _kill(platform.model_processes())
    if not killed:
        raise AssertionError("the runner had no model process to kill")
    return f"kill -9 model processes {killed}"


def kill_runner(platform: FaultPlatform, outage: float) -> str:
    pid = _kill([platform.child("runner")])
    return f"kill -9 runner {pid}"


def kill_worker(platform: FaultPlatform, outage: float) -> str:
    """Both Celery workers' main processes, the one that runs queued calls (in threads) and
    the one that runs builds and periodic tasks (its pool is left to the supervisor), and
    beat, without which the reaper would never run again."""
    pids = _kill([platform.child("calls"), platform.child("worker"), platform.child("beat")])
    return f"kill -9 Celery workers and beat {pids} (main processes)"


def restart_database(platform: FaultPlatform, outage: float) -> str:
    if not platform.database.stop():
        raise AssertionError("the platform's PostgreSQL was not running")
    time.sleep(outage)
    platform.database.ensure_running()
    return f"PostgreSQL stopped (fast) for {outage:g} s and started again"


def restart_broker(platform: FaultPlatform, outage: float) -> str:
    if platform.redis is None:
        # The embedded broker lives in the platform's PostgreSQL.
        return "embedded broker: " + restart_database(platform, outage)
    platform.redis.stop(signal.SIGKILL)
    time.sleep(outage)
    platform.redis.start()
    return f"redis-server killed (-9) for {outage:g} s and started again"


FAULTS = {
    "model": kill_model_processes,
    "runner": kill_runner,
    "worker": kill_worker,
    "database": restart_database,
    "broker": restart_broker,
}


# -- the load ---------------------------------------------------------------------------------


@dataclass
class Call:
    kind: str  # sync | void | short | overrun
    started: float  # seconds since the load started
    elapsed: float
    timeout: float  # the call's own timeout (seconds)
    status: int = 0  # HTTP status; 0: no answer
    request_id: str = ""
    error_type: str = ""
    message: str = ""
    shaped: bool = True  # an error answer had the documented JSON shape
    correct: bool = False  # a 200 carried this call's own result

    @property
    def finished(self) -> float:
        return self.started + self.elapsed

    @property
    def outcome(self) -> str:
        if self.status == 0:
            return "no answer"
        if self.status == 200:
            return "ok" if self.correct else f"200 {self.error_type or 'wrong result'}"
        if self.status == 202:
            return "accepted (async)"
        return f"{self.status} {self.error_type}".strip()


# Kinds of call: (kind, query, input besides n, timeout). `short` has a small timeout it
# keeps; `overrun` outlives its timeout on purpose (a 504).
KINDS = {
    "sync": ("timeout=10", {"sleep": 0.02}, 10.0),
    "void": ("output=void&timeout=10", {"sleep": 0.02}, 10.0),
    "short": ("timeout=2", {"sleep": 0.01}, 2.0),
    "overrun": ("timeout=1", {"sleep": 3}, 1.0),
}
DEFAULT_MIX = ["sync"] * 13 + ["void"] * 4 + ["short"] * 2 + ["overrun"]
# The embedded broker (kombu's SQLAlchemy transport) polls its queues about once a second,
# so one worker runs about one task a second from it: fewer asynchronous calls, or their
# backlog alone would outlast QUEUED_LIMIT_SECONDS.
EMBEDDED_BROKER_MIX = ["sync"] * 16 + ["void"] + ["short"] * 2 + ["overrun"]


def post_call(base: str, secret: str, data: dict, *, query: str = "", timeout: float = 60):
    request = urllib.request.Request(
        f"{base}/v1/algo/demo/{MODEL_NAME}?{query}",
        data=json.dumps(data).encode(),
        method="POST",
        headers={"Authorization": f"Simple {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"unparsed": raw[:300].decode(errors="replace")}


class Load:
    """`concurrency` threads calling the model back to back, each call's outcome recorded."""

    def __init__(self, platform: FaultPlatform, concurrency: int, mix: list[str] | None = None):
        self.platform = platform
        self.concurrency = concurrency
        self.mix = mix or (DEFAULT_MIX if platform.redis is not None else EMBEDDED_BROKER_MIX)
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counter = itertools.count()
        self._threads: list[threading.Thread] = []
        self.t0 = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> None:
        self.t0 = time.monotonic()
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._run, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(max(t for _q, _d, t in KINDS.values()) + HANG_MARGIN_SECONDS + 5)
        self._threads.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            n = next(self._counter)
            call = self.one(self.mix[n % len(self.mix)], n)
            with self._lock:
                self.calls.append(call)
            if call.status in (0, 500, 502, 503):
                # A client backs off a little when the service says it is unavailable.
                self._stop.wait(0.2)

    def one(self, kind: str, n: int) -> Call:
        query, extra, timeout = KINDS[kind]
        call = Call(kind, self.now(), 0.0, timeout)
        began = time.monotonic()
        try:
            status, body = post_call(
                self.platform.base,
                self.platform.secret,
                {"n": n, **extra},
                query=query,
                timeout=timeout + HANG_MARGIN_SECONDS,
            )
        except (OSError, urllib.error.URLError) as exc:
            call.elapsed = time.monotonic() - began
            call.message = f"{type(exc).__name__}: {exc}"
            return call
        call.elapsed = time.monotonic() - began
        call.status = status
        call.request_id = str(body.get("request_id") or "")
        error = body.get("error")
        if isinstance(error, dict):
            call.error_type = str(error.get("error_type", ""))
            call.message = str(error.get("message", ""))[:300]
        if status >= 400:
            call.shaped = (
                isinstance(error, dict)
                and isinstance(error.get("message"), str)
                and isinstance(error.get("error_type"), str)
                and "Traceback" not in json.dumps(body)
            )
            if not call.shaped:
                call.message = json.dumps(body)[:300]
        call.correct = status == 200 and body.get("result") == {"n": n}
        return call

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)


def run_with_faults(
    platform: FaultPlatform,
    load: Load,
    faults: list[str],
    *,
    before: float,
    between: float,
    outage: float,
    spacing: float = 0,
    recover_within: float = 60,
    log=print,
) -> list[Fault]:
    """Inject `faults` one after the other into a running load: `before` seconds of load
    first; after each fault, wait (at most `recover_within` seconds) until a synchronous call
    started after it succeeded, then `between` seconds more, and at least `spacing` seconds
    from one fault to the next."""
    done: list[Fault] = []
    time.sleep(before)
    for name in faults:
        fault = Fault(name, started=load.now())
        fault.detail = FAULTS[name](platform, outage)
        fault.ended = load.now()
        deadline = time.monotonic() + recover_within
        while recovery_seconds(load.snapshot(), fault) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        recovered = recovery_seconds(load.snapshot(), fault)
        log(
            f"  [{fault.started:6.1f} s] {fault.detail}; calls succeed again after "
            + (f"{recovered:.1f} s" if recovered is not None else f"more than {recover_within} s")
        )
        done.append(fault)
        time.sleep(max(between, fault.started + spacing - load.now()))
    return done


# -- after the faults -----------------------------------------------------------------------------


def wait_recovered(platform: FaultPlatform, timeout: float = 90) -> float:
    """Seconds until /readyz says ok by itself (database, broker, a live worker, the
    runner) and a new synchronous and a new asynchronous call both succeed."""
    began = time.monotonic()
    deadline = began + timeout
    last: object = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            status, body = get_json(f"{platform.base}/readyz")
            last = (status, body)
            components = body.get("components", {})
            if status == 200 and all(
                components.get(name, {}).get("status") == "ok"
                for name in ("database", "broker", "workers", "execution")
            ):
                break
        time.sleep(0.5)
    else:
        raise AssertionError(f"/readyz did not recover in {timeout:g} s: {last}")
    n = 10**9 + int(time.time())
    while True:
        status, body = post_call(platform.base, platform.secret, {"n": n}, query="timeout=20")
        if status == 200 and body.get("result") == {"n": n}:
            break
        assert time.monotonic() < deadline, f"a new call still fails: {status} {body}"
        time.sleep(0.5)
    status, body = post_call(
        platform.base, platform.secret, {"n": n + 1}, query="output=void&timeout=20"
    )
    assert status == 202, (status, body)
    request_id = body["request_id"]
    headers = {"Authorization": f"Simple {platform.secret}"}
    while True:
        status, invocation = get_json(f"{platform.base}/v1/invocations/{request_id}", headers)
        if status == 200 and invocation["status"] in FINAL_STATUSES:
            assert invocation["status"] == "succeeded", invocation
            assert invocation["result"] == {"n": n + 1}, invocation
            return time.monotonic() - began
        assert time.monotonic() < deadline, f"a new async call did not finish: {invocation}"
        time.sleep(0.5)


@dataclass
class Accounting:
    accepted: int = 0
    invocations: int = 0
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    settled_after: float = 0.0  # seconds the last open invocations took to become final


def check_accounting(platform: FaultPlatform, calls: list[Call]) -> Accounting:
    """Every accepted call has exactly one final status and one usage record; no client
    hung; every refusal was a clear, shaped error. Waits (bounded) for abandoned calls to
    be reaped first: their deadline is their timeout + the reaper's grace and interval."""
    report = Accounting()
    longest = max((c.timeout for c in calls), default=10.0)
    # A queued call the broker lost waits QUEUED_LIMIT_SECONDS before the reaper ends it.
    bound = max(longest + REAP_GRACE_SECONDS, QUEUED_LIMIT_SECONDS) + 4 * REAP_INTERVAL_SECONDS
    began = time.monotonic()
    url = platform.database_url()
    while True:
        with psycopg.connect(url) as db:
            open_rows = db.execute(
                "SELECT id::text, status, timeout_seconds, created_at, started_at "
                "FROM gateway_invocation WHERE status IN ('queued', 'running')"
            ).fetchall()
        if not open_rows or time.monotonic() - began > bound + 15:
            break
        time.sleep(1)
    report.settled_after = time.monotonic() - began
    for row in open_rows:
        report.problems.append(f"invocation {row[0]} still {row[1]} after {bound:g} s: {row}")

    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT id::text, status, coalesce(error->>'message', '') FROM gateway_invocation"
        ).fetchall()
        invocations = {request_id: status for request_id, status, _message in rows}
        errors = {request_id: message for request_id, _status, message in rows}
        records = {
            request_id: (count, status)
            for request_id, count, status in db.execute(
                "SELECT request_id::text, count(*), min(status) FROM billing_usagerecord "
                "GROUP BY request_id"
            ).fetchall()
        }
    report.invocations = len(invocations)
    report.statuses = Counter(invocations.values())

    for call in calls:
        if call.status == 0:
            report.problems.append(
                f"{call.kind} call at {call.started:.1f} s got no answer after "
                f"{call.elapsed:.1f} s: {call.message}"
            )
        elif call.elapsed > call.timeout + HANG_MARGIN_SECONDS:
            report.problems.append(
                f"{call.kind} call at {call.started:.1f} s took {call.elapsed:.1f} s "
                f"(its timeout: {call.timeout:g} s)"
            )
        if call.status >= 400 and not call.shaped:
            report.problems.append(f"{call.status} without the error shape: {call.message}")
        if 400 <= call.status < 500:
            report.problems.append(
                f"{call.kind} call at {call.started:.1f} s refused: {call.status} "
                f"{call.error_type} {call.message}"
            )
        if call.status >= 500 and call.status not in (503, 504):
            report.problems.append(
                f"{call.kind} call at {call.started:.1f} s: {call.status} {call.error_type} "
                f"{call.message} (an outage must answer 503)"
            )
        if call.status in (200, 202, 504) and call.request_id not in invocations:
            report.problems.append(
                f"{call.status} for {call.request_id} but no invocation was recorded"
            )
        if call.status == 202 and "queue is unavailable" in errors.get(call.request_id, ""):
            report.problems.append(
                f"202 for {call.request_id}, a call that could not be queued: "
                f"{errors[call.request_id]}"
            )
        if call.status == 200 and not call.correct and not call.error_type:
            report.problems.append(f"200 for {call.request_id} with another call's result")
    answered = {c.request_id for c in calls if c.request_id}
    report.accepted = len(answered & set(invocations))
    for request_id, status in invocations.items():
        # Every invocation, seen by this load or not (its answer may have been lost).
        count, recorded = records.get(request_id, (0, None))
        if count != 1:
            report.problems.append(f"invocation {request_id} ({status}) has {count} usage records")
        elif status in FINAL_STATUSES and recorded != status:
            report.problems.append(
                f"invocation {request_id} is {status} but its usage record says {recorded}"
            )
    return report


# -- figures ---------------------------------------------------------------------------------------


@dataclass
class Figures:
    label: str
    seconds: float
    calls: int
    completed: int  # 200 with the call's own result, or 202 accepted
    p50: float
    p90: float
    p99: float
    outcomes: Counter

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0


def figures(label: str, calls: list[Call], start: float, end: float) -> Figures:
    """Calls started in [start, end): latency of the completed ones, throughput, outcomes."""
    window = [c for c in calls if start <= c.started < end]
    done = [c for c in window if c.correct or c.status == 202]
    latencies = [c.elapsed * 1000 for c in done]
    return Figures(
        label,
        end - start,
        len(window),
        len(done),
        percentile(latencies, 50),
        percentile(latencies, 90),
        percentile(latencies, 99),
        Counter(c.outcome for c in window),
    )


def recovery_seconds(calls: list[Call], fault: Fault) -> float | None:
    """From the fault to the end of the first successful synchronous call started after
    the injection was over."""
    after = [c.finished for c in calls if c.correct and c.started >= fault.ended]
    return (min(after) - fault.started) if after else None


def format_figures(row: Figures, baseline: Figures | None = None) -> str:
    line = (
        f"{row.label:<34} {row.calls:6d} calls  {row.throughput:7.1f}/s  "
        f"p50 {row.p50:7.1f} ms  p90 {row.p90:7.1f} ms  p99 {row.p99:7.1f} ms"
    )
    if baseline is not None and baseline.throughput:
        line += (
            f"  throughput x{row.throughput / baseline.throughput:.2f}"
            f"  p99 x{row.p99 / baseline.p99:.2f}"
        )
    return line


def fault_report(
    calls: list[Call], faults: list[Fault], *, window: float, baseline: Figures | None = None
) -> list[str]:
    """One block per fault: figures of the calls started in its window (`window` seconds
    from the fault, cut short by the next fault), their outcomes, the most frequent
    messages, and how long until a new call succeeded."""
    lines = []
    for index, fault in enumerate(faults):
        end = fault.started + window
        if index + 1 < len(faults):
            end = min(end, faults[index + 1].started)
        row = figures(f"{fault.name} ({end - fault.started:.1f} s)", calls, fault.started, end)
        recovered = recovery_seconds(calls, fault)
        lines.append(format_figures(row, baseline))
        lines.append(
            f"    {fault.detail}; first success after "
            + (f"{recovered:.1f} s" if recovered is not None else "never")
        )
        lines.append("    " + ", ".join(f"{k}: {v}" for k, v in row.outcomes.most_common()))
        seen = Counter(
            f"{c.outcome}: {c.message[:100]}"
            for c in calls
            if fault.started <= c.started < end and c.message
        )
        lines.extend(f"      {count} x {text}" for text, count in seen.most_common(4))
    return lines


def new_directory(prefix: str) -> Path:
    """A directory the embedded PostgreSQL's system user can reach (see server_tmp_path)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-{uuid.uuid4().hex[:6]}-"))
    path.chmod(0o755)
    return path
