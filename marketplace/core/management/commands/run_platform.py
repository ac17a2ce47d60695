"""`make run`: migrate, prepare the demo, and run the web server, two Celery workers, beat
and the model runner together in the foreground until Ctrl-C, then stop every process it started,
the embedded PostgreSQL included.

A child that dies (killed, crashed, out of memory) is restarted with an exponential backoff;
one that keeps dying right after its start is a crash loop, and the platform then stops with
its exit code instead of restarting it forever."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand
from django.db import connections

from marketplace import embedded

SHUTDOWN_GRACE_SECONDS = 20
# A child that ran this long before it died was healthy: it is restarted at once (after the
# first backoff step). One that dies sooner is restarting in a loop: each further restart
# waits twice as long, up to RESTART_BACKOFF_MAX_SECONDS, and after RESTART_LIMIT such
# restarts in a row the platform gives up.
STABLE_AFTER_SECONDS = 30
RESTART_BACKOFF_SECONDS = 1.0
RESTART_BACKOFF_MAX_SECONDS = 30.0
RESTART_LIMIT = 6


@dataclass
class _Child:
    name: str
    argv: list[str]
    env: dict
    process: subprocess.Popen
    started_at: float
    quick_restarts: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        # Each child leads its own process group, so a Ctrl-C reaches only the supervisor,
        # which then stops the children in order and reaps their children.
        self.process = subprocess.Popen(self.argv, env=self.env, start_new_session=True)  # noqa: S603
        self.started_at = time.monotonic()
        self.restart_at = None


class Command(BaseCommand):
    help = "Run the whole platform (web, worker) in the foreground on embedded defaults."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "3"))
        )
        parser.add_argument(
            "--worker-concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2"))
        )
        parser.add_argument(
            "--calls-concurrency",
            type=int,
            default=int(os.environ.get("CALLS_CONCURRENCY", "8")),
            help="threads of the worker that runs queued calls",
        )
        parser.add_argument("--no-demo", action="store_true", help="skip the demo data")
        parser.add_argument(
            "--no-catalog",
            action="store_true",
            help="create the demo admin and key but not the demo catalogue",
        )

    def handle(
        self,
        *args,
        host,
        port,
        web_workers,
        worker_concurrency,
        calls_concurrency,
        no_demo,
        no_catalog,
        **options,
    ):
        self._children: list[_Child] = []
        self._stopping = False
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        exit_code = 0
        try:
            self._say("Applying database migrations")
            call_command("migrate", interactive=False, verbosity=0)
            if not no_demo:
                call_command("setup_demo", public_url=f"http://{host}:{port}")
                if not no_catalog and "load_demo_catalog" in get_commands():
                    call_command("load_demo_catalog")
            self._start_children(host, port, web_workers, worker_concurrency, calls_concurrency)
            self._say(f"Serving on http://{host}:{port}/  (Ctrl-C stops everything)")
            exit_code = self._supervise()
        finally:
            self._stop_children()
            self._stop_embedded_postgres()
        if exit_code:
            sys.exit(exit_code)

    # -- processes -----------------------------------------------------------------------------

    def _start_children(
        self, host, port, web_workers, worker_concurrency, calls_concurrency
    ) -> None:
        python = sys.executable
        bindir = os.path.dirname(python)
        env = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self._fresh_metrics_dir())
        schedule = settings.VAR_DIR / "celerybeat-schedule"
        celery_worker = [os.path.join(bindir, "celery"), "-A", "marketplace", "worker"]
        celery_worker += ["--loglevel", "INFO"]
        commands = {
            "runner": [python, str(settings.BASE_DIR / "manage.py"), "run_runner"],
            "web": [
                os.path.join(bindir, "gunicorn"),
                "marketplace.wsgi:application",
                # Metrics hooks and log format; no access log: each request logs its own
                # line, with its request id (marketplace.requests).
                "--config",
                "python:marketplace.core.gunicorn_conf",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_workers),
                "--forwarded-allow-ips",
                "127.0.0.1",
            ],
            # Builds, webhooks and periodic tasks: processes, as a build or an embedding
            # holds the CPU (and the GIL) for seconds.
            "worker": [
                *celery_worker,
                "--pool",
                "prefork",
                "--concurrency",
                str(worker_concurrency),
                "--hostname",
                "worker@%h",
                "--queues",
                ",".join(self._worker_queues()),
            ],
            # The periodic tasks' clock, a child of its own: a beat embedded in the worker
            # (`--beat`) that dies is never started again, and with it the reaper stops.
            "beat": [
                os.path.join(bindir, "celery"),
                "-A",
                "marketplace",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(schedule),
            ],
            # Queued calls: threads, as a call's task mostly waits on the runner and the
            # database; a thread takes the next call without the pool's pipe between the
            # consumer and a child process (see docs/architecture.md).
            "calls": [
                *celery_worker,
                "--pool",
                "threads",
                "--concurrency",
                str(calls_concurrency),
                "--hostname",
                "calls@%h",
                "--queues",
                ",".join(self._calls_queues()),
            ],
        }
        for name, argv in commands.items():
            child = _Child(name, argv, env, process=None, started_at=0.0)
            child.start()
            self._children.append(child)
            self._say(f"started {name} (pid {child.process.pid})")

    @staticmethod
    def _fresh_metrics_dir() -> Path:
        """Where every child writes its Prometheus metrics (marketplace.core.metrics), empty:
        the files of a previous run would be summed with this one's."""
        configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
        path = Path(configured) if configured else settings.VAR_DIR / "prometheus"
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path

    @staticmethod
    def _worker_queues() -> list[str]:
        """What this host's prefork worker serves: default tasks and builds."""
        return [settings.CELERY_TASK_DEFAULT_QUEUE, settings.CATALOG_BUILD_QUEUE]

    @staticmethod
    def _calls_queues() -> list[str]:
        """What this host's calls worker serves: asynchronous calls and the hardware class
        this host offers to the celery execution backend."""
        return [settings.GATEWAY_ASYNC_QUEUE, f"hw-{settings.HARDWARE_CLASS}"]

    def _supervise(self) -> int:
        while not self._stopping:
            for child in self._children:
                code = child.process.poll()
                if code is None:
                    if time.monotonic() - child.started_at >= STABLE_AFTER_SECONDS:
                        child.quick_restarts = 0
                    continue
                if child.restart_at is None:
                    gave_up = self._schedule_restart(child, code)
                    if gave_up:
                        return code or 1
                elif time.monotonic() >= child.restart_at:
                    child.start()
                    self._say(f"restarted {child.name} (pid {child.process.pid})")
            time.sleep(0.5)
        return 0

    def _schedule_restart(self, child: _Child, code: int) -> bool:
        """A child died: end what is left of its process group (a killed Celery worker
        leaves its pool behind) and decide when it starts again. Returns True when it is
        crash-looping and the platform should stop instead."""
        _signal_group(child.process, signal.SIGKILL)
        ran = time.monotonic() - child.started_at
        if ran < STABLE_AFTER_SECONDS:
            child.quick_restarts += 1
        else:
            child.quick_restarts = 0
        if child.quick_restarts > RESTART_LIMIT:
            self._say(
                f"{child.name} exited with code {code} {RESTART_LIMIT + 1} times in a row "
                "right after starting; stopping everything"
            )
            return True
        delay = min(
            RESTART_BACKOFF_SECONDS * 2 ** max(child.quick_restarts - 1, 0),
            RESTART_BACKOFF_MAX_SECONDS,
        )
        child.restart_at = time.monotonic() + delay
        self._say(f"{child.name} exited with code {code}; restarting it in {delay:g} s")
        return False

    def _request_stop(self, signum, frame) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._say("stopping…")

    def _stop_children(self) -> None:
        # The leaders shut their own children down gracefully (gunicorn its workers, Celery
        # its pool); whatever is left of a group afterwards is killed below.
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for child in self._children:
            name, process = child.name, child.process
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(f"{name} did not stop in time; killing it")
            # Whatever the leader did, nothing of its group may outlive us.
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self._children.clear()

    def _stop_embedded_postgres(self) -> None:
        if settings.DATABASE_ENGINE_NAME != "embedded-postgresql":
            return

        connections.close_all()

        if embedded.EmbeddedPostgres(settings.VAR_DIR).stop():
            self._say("stopped the embedded PostgreSQL")

    def _say(self, message: str) -> None:
        self.stdout.write(self.style.SUCCESS(f"[run] {message}"))
        self.stdout.flush()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
