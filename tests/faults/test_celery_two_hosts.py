"""The `celery` execution backend spread over two worker hosts, and surviving the loss of
one. Each host is a network namespace of its own (as root with `ip`; else a group of
processes on loopback with its own worker name and runner) running a Celery worker for the
`hw-cpu` queue and its own runner. The hosts reach the platform's PostgreSQL and a private
Redis only over their veth link. The platform's own worker serves another hardware class,
so every call runs on one of the two hosts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from marketplace.embedded import EmbeddedPostgres, EmbeddedPostgresError
from tests.faults.netns import Host, hosts
from tests.faults.services import UnixRelay, private_redis, redis_server_available
from tests.live_platform import ROOT, Platform, call_text, demo_key, publish_with_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not redis_server_available(),
        reason="needs redis-server (apt-get install redis-server; .ci/run does it)",
    ),
]

PREDICT = (
    "import time\n\n"
    "def apply(text):\n"
    "    if text.startswith('sleep '):\n"
    "        time.sleep(float(text.split()[1]))\n"
    "    return text.upper()\n"
)


class WorkerHost:
    """A Celery worker consuming hw-cpu and this host's runner, started on `host`."""

    def __init__(self, host: Host, directory: Path, env: dict):
        self.host = host
        self.hostname = f"worker@{host.name}"
        directory.mkdir()
        self.log = directory / "host.log"
        self.runner_socket = directory / "runner.sock"
        env = {
            **env,
            "MARKETPLACE_VAR_DIR": str(directory / "var"),
            "RUNNER_SOCKET": str(self.runner_socket),
        }
        bindir = Path(sys.executable).parent
        argvs = [
            [sys.executable, str(ROOT / "manage.py"), "run_runner"],
            [
                str(bindir / "celery"),
                "-A",
                "marketplace",
                "worker",
                "--hostname",
                self.hostname,
                "--queues",
                "hw-cpu",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
        ]
        out = self.log.open("w")
        self.processes = [
            subprocess.Popen(
                host.command(argv),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for argv in argvs
        ]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9 the whole tree: worker, its pool, the runner and its model processes."""
        tree = []
        for process in self.processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                leader = psutil.Process(process.pid)
                tree += [leader, *leader.children(recursive=True)]
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(tree, timeout=10)
        for process in self.processes:
            process.wait(timeout=10)


def _embedded_password(var, timeout: float = 180) -> str:
    """The platform's embedded PostgreSQL password, once its first start has made it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return EmbeddedPostgres(var).password()
        except EmbeddedPostgresError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_calls_spread_over_two_hosts_and_survive_losing_one(server_tmp_path):
    started = time.monotonic()
    var = server_tmp_path / "var"
    with contextlib.ExitStack() as stack:
        two = stack.enter_context(hosts(2))
        addresses = list(dict.fromkeys(["127.0.0.1", *(h.service_address for h in two)]))
        redis_port = stack.enter_context(private_redis(tuple(addresses)))
        platform = Platform(
            var,
            {
                "EXECUTION_BACKEND": "celery",
                "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
                # The platform's own worker serves another class: calls run on the hosts.
                "HARDWARE_CLASS": "platform",
            },
        )
        workers: list[WorkerHost] = []
        database = None
        try:
            # The hosts start with the platform: they reach its database once it is up.
            relay = UnixRelay(addresses, EmbeddedPostgres(var).socket_dir / ".s.PGSQL.5432")
            stack.callback(relay.close)
            base_env = {
                k: v
                for k, v in os.environ.items()
                if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
            }
            password = _embedded_password(var)
            for host in two:
                env = {
                    **base_env,
                    "PYTHONUNBUFFERED": "1",
                    "DATABASE_URL": f"postgresql://postgres:{password}"
                    f"@{host.service_address}:{relay.port}/marketplace",
                    "CELERY_BROKER_URL": f"redis://{host.service_address}:{redis_port}/0",
                    "MEDIA_ROOT": str(var / "media"),
                    "HARDWARE_CLASS": "cpu",
                }
                workers.append(WorkerHost(host, server_tmp_path / host.name, env))
            platform.wait_ready()
            secret = demo_key(platform)
            publish_with_cli(
                platform,
                secret,
                server_tmp_path,
                name="shout",
                predict=PREDICT,
                sample_input="hey",
            )
            database = psycopg.connect(EmbeddedPostgres(var).url(), autocommit=True)

            def rows(sql, *params):
                return database.execute(sql, params).fetchall()

            _wait(
                lambda: (
                    {h for (h,) in rows("SELECT hostname FROM core_workerheartbeat")}
                    >= {w.hostname for w in workers}
                    and all(w.runner_socket.exists() for w in workers)
                ),
                60,
                lambda: "\n".join(w.output()[-3000:] for w in workers),
            )

            if all(h.namespace for h in two):
                # Each worker really is on a network of its own, not this one.
                networks = {os.readlink(f"/proc/{w.processes[1].pid}/ns/net") for w in workers}
                assert len(networks) == 2 and os.readlink("/proc/self/ns/net") not in networks

            # Two callers at a time: each host takes one call (prefetch 1, concurrency 1).
            answers = _concurrently(
                [
                    lambda i=i: call_text(platform, secret, "/v1/algo/demo/shout", f"sleep 0.{i}")
                    for i in range(1, 9)
                ],
                callers=2,
            )
            assert [(s, b.get("result")) for s, b in answers] == [
                (200, f"SLEEP 0.{i}") for i in range(1, 9)
            ], answers
            ran_on = dict(rows("SELECT worker, count(*) FROM gateway_invocation GROUP BY 1"))
            assert set(ran_on) == {"worker@host0", "worker@host1"}, ran_on

            # Load again; once each host runs a call, host0 is lost with its call in flight.
            lost_host, survivor = workers
            in_flight = []
            callers = threading.Thread(
                target=lambda: in_flight.extend(
                    _concurrently(
                        [
                            lambda: call_text(
                                platform, secret, "/v1/algo/demo/shout?timeout=40", "sleep 3"
                            )
                        ]
                        * 2,
                        callers=2,
                    )
                )
            )
            callers.start()
            running = {}
            _wait(
                lambda: (
                    running.update(
                        rows(
                            "SELECT worker, id FROM gateway_invocation"
                            " WHERE status = 'running' AND worker <> ''"
                        )
                    )
                    or set(running) == {lost_host.hostname, survivor.hostname}
                ),
                30,
                lambda: str(
                    rows(
                        "SELECT status, worker, input_preview, started_at, finished_at"
                        " FROM gateway_invocation ORDER BY created_at"
                    )
                ),
            )
            lost_call = running[lost_host.hostname]
            lost_host.kill()
            lost_host.host.remove()
            callers.join(60)
            assert not callers.is_alive()
            # The call that was in flight on the lost host was run again on the survivor.
            assert [s for s, _ in in_flight] == [200, 200], in_flight
            assert [b["result"] for _, b in in_flight] == ["SLEEP 3", "SLEEP 3"], in_flight
            assert rows(
                "SELECT status, worker FROM gateway_invocation WHERE id = %s", lost_call
            ) == [("succeeded", survivor.hostname)]
            assert "was lost while running invocation" in platform.output()

            # Later calls all succeed, on the surviving host.
            before = {i for (i,) in rows("SELECT id FROM gateway_invocation")}
            for i in range(3):
                status, body = call_text(platform, secret, "/v1/algo/demo/shout", f"after {i}")
                assert status == 200 and body["result"] == f"AFTER {i}", body
            later = [
                w for (i, w) in rows("SELECT id, worker FROM gateway_invocation") if i not in before
            ]
            assert later == [survivor.hostname] * 3

            # Exactly one usage record per call, the retried one included, none left open.
            assert rows("SELECT count(*) FROM gateway_invocation WHERE status <> 'succeeded'") == [
                (0,)
            ]
            assert (
                rows(
                    "SELECT i.id FROM gateway_invocation i LEFT JOIN billing_usagerecord u"
                    " ON u.request_id = i.id GROUP BY i.id HAVING count(u.request_id) <> 1"
                )
                == []
            )
            assert rows(
                "SELECT count(*) FROM billing_usagerecord WHERE request_id = %s", lost_call
            ) == [(1,)]
        finally:
            for worker in workers:
                worker.kill()
            if database is not None:
                database.close()
            assert platform.interrupt() == 0
    # About 20 s after the platform is up (itself 15-50 s, with the machine's load).
    assert time.monotonic() - started < 150


def _concurrently(calls, *, callers: int) -> list:
    """Run `calls` with `callers` threads; results in the order of `calls`."""
    results: list = [None] * len(calls)
    pending = list(enumerate(calls))
    lock = threading.Lock()

    def caller():
        while True:
            with lock:
                if not pending:
                    return
                index, call = pending.pop(0)
            results[index] = call()

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def _wait(condition, timeout: float, explain) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out; {explain()}")
