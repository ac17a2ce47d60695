"""Killing the worker in the middle of calls: every accepted call ends with one final status
and exactly one usage record. A real platform (web, Celery worker and beat, runner) runs
calls through the `celery` backend on a Redis of its own and the loopback PostgreSQL; the
test kills the worker processes running calls with SIGKILL while synchronous and asynchronous
calls are in flight. Waiting callers find their worker gone and have the call run again (or
failed); the reaper finishes the abandoned asynchronous ones."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid

import psutil
import psycopg
import pytest

from tests.faults.services import private_redis, redis_server_available
from tests.live_platform import Platform, demo_key, loopback_services_available, publish_with_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not loopback_services_available(), reason="needs PostgreSQL on loopback"),
    pytest.mark.skipif(
        not redis_server_available(),
        reason="needs redis-server (apt-get install redis-server; .ci/run does it)",
    ),
]

NAP = "import time\n\ndef apply(seconds):\n    time.sleep(float(seconds))\n    return 'rested'\n"


@pytest.fixture
def redis_port():
    """A Redis of this test's own: no other run's worker takes its tasks."""
    with private_redis() as port:
        yield port


@pytest.fixture
def database():
    name = f"worker_loss_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def post(platform, secret, path, text, timeout=60):
    request = urllib.request.Request(
        f"{platform.base}{path}",
        data=text.encode(),
        method="POST",
        headers={"Authorization": secret, "Content-Type": "text/plain"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def call_running_processes(platform) -> list[psutil.Process]:
    """The platform's `calls` worker, whose threads run the calls (the prefork worker beside
    it runs builds, webhooks and beat, whose reaper this test needs alive)."""
    found = []
    for process in psutil.Process(platform.process.pid).children(recursive=True):
        try:  # a process may end while it is looked at
            if any(word.startswith("calls@") for word in process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_every_accepted_call_has_one_record_after_the_worker_dies(
    server_tmp_path, database, redis_port
):
    platform = Platform(
        server_tmp_path / "var",
        {
            "EXECUTION_BACKEND": "celery",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DATABASE_URL": database,
            "GATEWAY_REAP_GRACE_SECONDS": "2",
            "GATEWAY_REAP_INTERVAL_SECONDS": "2",
        },
    )
    try:
        platform.wait_ready()
        secret = demo_key(platform)
        publish_with_cli(
            platform, secret, server_tmp_path, name="nap", sample_input="0", predict=NAP
        )
        answers: list[tuple[int, dict]] = []
        lock = threading.Lock()

        def call(path, text):
            answer = post(platform, secret, path, text)
            with lock:
                answers.append(answer)

        threads = [
            threading.Thread(target=call, args=("/v1/algo/demo/nap?timeout=6", "3"))
            for _ in range(3)
        ] + [
            threading.Thread(target=call, args=("/v1/algo/demo/nap?output=void&timeout=6", "3"))
            for _ in range(5)
        ]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        # Kill the calls worker as soon as it is running calls.
        deadline = time.monotonic() + 20
        killed = 0
        while time.monotonic() < deadline and not killed:
            with psycopg.connect(database) as db:
                running = db.execute(
                    "SELECT count(*) FROM gateway_invocation WHERE status = 'running'"
                ).fetchone()[0]
            if running:
                for process in call_running_processes(platform):
                    try:
                        os.kill(process.pid, signal.SIGKILL)
                        killed += 1
                    except ProcessLookupError:
                        pass
            else:
                time.sleep(0.1)
        assert killed, "no worker process was running a call"
        for thread in threads:
            thread.join(60)
        accepted = [body["request_id"] for _status, body in answers if "request_id" in body]
        assert len(accepted) == len(threads), answers

        # Everything ends: callers time out theirs, the reaper finishes the abandoned ones,
        # and the calls still queued run on the restarted calls worker.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with psycopg.connect(database) as db:
                open_calls = db.execute(
                    "SELECT count(*) FROM gateway_invocation WHERE status IN ('queued', 'running')"
                ).fetchone()[0]
            if not open_calls:
                break
            time.sleep(1)
        with psycopg.connect(database) as db:
            statuses = dict(
                db.execute("SELECT id::text, status FROM gateway_invocation").fetchall()
            )
            records = db.execute(
                "SELECT request_id::text, count(*) OVER (PARTITION BY request_id), status "
                "FROM billing_usagerecord"
            ).fetchall()
        assert set(statuses) >= set(accepted)
        unfinished = {
            r: statuses[r]
            for r in accepted
            if statuses[r] not in ("succeeded", "failed", "timeout", "canceled")
        }
        assert not unfinished, (unfinished, platform.output()[-6000:])
        recorded = {request_id: (count, status) for request_id, count, status in records}
        for request_id in accepted:
            assert request_id in recorded, f"no usage record for {request_id}"
            count, status = recorded[request_id]
            assert count == 1 and status == statuses[request_id]
        # The kill really interrupted calls: their waiting callers found the worker gone
        # (and had them run again, or failed them, each once).
        assert "was lost while running invocation" in platform.output()
    finally:
        assert platform.interrupt() == 0
