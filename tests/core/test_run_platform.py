"""`make run`'s supervisor end to end: a fresh data directory, the site up with every
component named in /readyz, a real Celery worker reporting in, Ctrl-C leaving nothing
behind, and a second run reusing the data."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Platform:
    def __init__(self, var_dir: Path, extra_env: dict | None = None):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
        }
        env.update({"MARKETPLACE_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"})
        env.update(extra_env or {})
        self.log = var_dir.parent / f"run-{self.port}.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_platform",
                "--port",
                str(self.port),
                "--web-workers",
                "2",
                "--worker-concurrency",
                "1",
                "--no-catalog",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                status, body = _get(f"{self.base}/readyz")
                if status == 200 and body["components"]["workers"]["status"] == "ok":
                    return body
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready in time: {body}\n{self.output()}")

    def interrupt(self) -> int:
        descendants = psutil.Process(self.process.pid).children(recursive=True)
        os.kill(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=60)
        _gone, alive = psutil.wait_procs(descendants, timeout=10)
        assert not alive, f"left behind: {alive}"
        return code


def _no_process_mentions(text: str) -> list:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if text in cmdline:
            found.append((proc.info["pid"], cmdline))
    return found


def test_run_serves_everything_and_ctrl_c_stops_everything(server_tmp_path):
    var_dir = server_tmp_path / "var"
    platform = Platform(var_dir)
    try:
        body = platform.wait_ready()
        assert body["status"] in ("ok", "degraded")
        for name in ("database", "broker", "workers", "search", "sandbox"):
            assert name in body["components"]
        assert body["components"]["database"]["engine"] == "embedded-postgresql"
        assert body["components"]["broker"]["status"] == "ok"
        secret = re.search(r"API key:\s+(mk_\w+)", platform.output()).group(1)
        status, me = _get(f"{platform.base}/v1/me", {"Authorization": f"Simple {secret}"})
        assert status == 200 and me["username"] == "demo-admin"
        with urllib.request.urlopen(f"{platform.base}/", timeout=10) as page:
            assert b"<html" in page.read().lower()
    finally:
        code = platform.interrupt()
    assert code == 0, platform.output()
    assert "stopped the embedded PostgreSQL" in platform.output()
    assert _no_process_mentions(str(var_dir)) == []

    again = Platform(var_dir)
    try:
        again.wait_ready()
        assert "demo admin and key exist" in again.output()
        status, _ = _get(f"{again.base}/v1/me", {"Authorization": f"Simple {secret}"})
        assert status == 200
    finally:
        assert again.interrupt() == 0
    assert _no_process_mentions(str(var_dir)) == []


def _loopback_services_available() -> bool:
    for port in (5432, 6379):
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return False
    return True


@pytest.mark.skipif(
    not _loopback_services_available(), reason="needs PostgreSQL and Redis on loopback"
)
def test_run_with_external_postgresql_and_redis(server_tmp_path):
    import psycopg

    name = f"mp_run_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    var_dir = server_tmp_path / "var"
    platform = Platform(
        var_dir,
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        },
    )
    try:
        body = platform.wait_ready()
        assert body["components"]["database"]["engine"] == "postgresql"
        assert body["components"]["broker"]["engine"] == "redis"
        assert body["components"]["broker"]["status"] == "ok"
        assert not (var_dir / "postgres").exists()
    finally:
        assert platform.interrupt() == 0
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
