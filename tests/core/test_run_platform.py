"""`make run`'s supervisor end to end: a fresh data directory, the site up with every
component named in /readyz, a real Celery worker reporting in, Ctrl-C leaving nothing
behind, and a second run reusing the data."""

from __future__ import annotations

import re
import urllib.request
import uuid

import pytest

from tests.live_platform import (
    Platform,
    call_text,
    get_json,
    loopback_services_available,
    processes_mentioning,
    publish_with_cli,
)

pytestmark = pytest.mark.slow


def _publish_and_call(platform, secret: str, directory) -> None:
    """The processes make run starts work together: the CLI uploads, the worker builds,
    the runner serves the call."""
    publish_with_cli(
        platform,
        secret,
        directory,
        name="hello",
        sample_input="world",
        predict="def apply(name):\n    return f'hello {name}'\n",
    )
    status, body = call_text(platform, secret, "/v1/algo/demo/hello", "make run")
    assert status == 200 and body["result"] == "hello make run", body


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
        assert body["components"]["execution"]["status"] == "ok"  # the runner answers
        secret = re.search(r"API key:\s+(mk_\w+)", platform.output()).group(1)
        status, me = get_json(f"{platform.base}/v1/me", {"Authorization": f"Simple {secret}"})
        assert status == 200 and me["username"] == "demo-admin"
        _publish_and_call(platform, secret, server_tmp_path)
        with urllib.request.urlopen(f"{platform.base}/", timeout=10) as page:
            assert b"<html" in page.read().lower()
    finally:
        code = platform.interrupt()
    assert code == 0, platform.output()
    assert "stopped the embedded PostgreSQL" in platform.output()
    assert processes_mentioning(str(var_dir)) == []

    again = Platform(var_dir)
    try:
        again.wait_ready()
        assert "demo admin and key exist" in again.output()
        status, _ = get_json(f"{again.base}/v1/me", {"Authorization": f"Simple {secret}"})
        assert status == 200
    finally:
        assert again.interrupt() == 0
    assert processes_mentioning(str(var_dir)) == []


@pytest.mark.skipif(
    not loopback_services_available(), reason="needs PostgreSQL and Redis on loopback"
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
