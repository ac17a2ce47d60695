"""Trust by default on the whole platform, as `make run` starts it: the embedded PostgreSQL,
the runner, a Celery worker that builds. A tenant publishes with the `marketplace` tool a
model that attacks from its build's sample run and from its calls, and a model whose
requirement is a source distribution (from an index the test serves) whose build code
attacks; nothing of the platform is reached, and none of it ran as root."""

from __future__ import annotations

import ast
import json
import re

import psutil
import psycopg
import pytest

from execution import sandbox
from marketplace.embedded import EmbeddedPostgres
from tests.live_platform import Platform, call_text, demo_key, publish_with_cli
from tests.security.test_trust_by_default import hostile_backend, serve_index

pytestmark = pytest.mark.slow

ATTACKS = """
import json, os, socket


def attempt(action):
    try:
        return repr(action())[:160]
    except Exception as exc:
        return type(exc).__name__


def connect(target):
    family = socket.AF_UNIX if isinstance(target, str) else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(2)
        sock.connect(target)
        return "connected"


def read(path):
    with open(path) as f:
        return f.read()


TARGETS = json.loads(TARGETS_JSON)


def report():
    found = {"uid": os.getuid(), "processes": sorted(p for p in os.listdir("/proc") if p.isdigit())}
    for path in TARGETS["files"]:
        found[path] = attempt(lambda path=path: read(path))
    for path in TARGETS["sockets"]:
        found[path] = attempt(lambda path=path: connect(path))
    for port in TARGETS["ports"]:
        found[f"tcp:{port}"] = attempt(lambda port=port: connect(("127.0.0.1", port)))
    return found


print("SAMPLE-RUN-REPORT", json.dumps(report()))


def apply(text):
    return report()
"""


@pytest.fixture
def platform(server_tmp_path):
    var = server_tmp_path / "var"
    backend = hostile_backend(
        var=var,
        db_port=5432,
        db_socket=str(EmbeddedPostgres(var).socket_dir / ".s.PGSQL.5432"),
        marker=server_tmp_path / "marker-written-by-a-build",
    )
    index, port = serve_index(server_tmp_path / "index", backend)
    running = Platform(
        var,
        {
            "UV_INDEX_URL": f"http://127.0.0.1:{port}/simple",
            "OUTBOUND_ALLOWED_NETWORKS": f"127.0.0.1:{port}",
        },
    )
    try:
        running.wait_ready(timeout=240)
        yield running, var
    finally:
        assert running.interrupt() == 0
        index.shutdown()


def test_a_tenant_reaches_nothing_of_a_running_platform(platform, server_tmp_path):
    running, var = platform
    secret = demo_key(running)
    database = EmbeddedPostgres(var)
    targets = {
        "files": [
            str(var / "demo-credentials.txt"),
            str(var / "secret_key"),
            str(database.password_file),
            str(var / "postgres" / "data" / "pg_hba.conf"),
            "/proc/1/environ",
        ],
        "sockets": [
            str(database.socket_dir / ".s.PGSQL.5432"),
            str(var / "run" / "runner.sock"),
        ],
        "ports": [running.port, 5432, 6379],
    }
    predict = ATTACKS.replace("TARGETS_JSON", repr(json.dumps(targets)))
    publish_with_cli(
        running, secret, server_tmp_path, name="prober", predict=predict, sample_input="x"
    )
    status, body = call_text(running, secret, "/v1/algo/demo/prober", "x")
    assert status == 200, body
    seen = body["result"]
    assert seen["uid"] == sandbox.SANDBOX_UID
    # /proc/1 is the sandbox's own init: its environment is the sandbox's, nothing else.
    assert "SECRET" not in seen["/proc/1/environ"] and "DATABASE" not in seen["/proc/1/environ"]
    reached = {
        target: outcome
        for target, outcome in seen.items()
        if target not in ("uid", "processes", "/proc/1/environ") and not outcome.endswith("Error")
    }
    assert not reached, reached
    # Its own process tree only: the sandbox's init and itself (and the shim's threads).
    assert len(seen["processes"]) <= 3, seen["processes"]
    credentials = (var / "demo-credentials.txt").read_text()
    password = database.password()
    log = running.output()
    sample = re.search(r"SAMPLE-RUN-REPORT (\{.*\})", log)
    for text in (json.dumps(body), sample.group(1) if sample else ""):
        assert password not in text and secret not in text
        assert credentials.strip()[-12:] not in text

    # Seen from the host, no process of the model runs as root.
    model_processes = [
        process
        for process in psutil.process_iter(["uids", "cmdline"])
        if "python_shim.py" in " ".join(process.info["cmdline"] or [])
    ]
    assert model_processes
    if sandbox.platform_is_root():
        assert {p.info["uids"].real for p in model_processes} == {sandbox.sandbox_user()[0]}


def test_a_hostile_source_distribution_builds_only_in_the_sandbox(platform, server_tmp_path):
    running, var = platform
    secret = demo_key(running)
    published = publish_with_cli(
        running,
        secret,
        server_tmp_path,
        name="evil",
        predict="def apply(x):\n    return x\n",
        sample_input=None,
        requirements="evilpkg==1.0\n",
        check=False,
    )
    assert published.returncode != 0, published.stdout
    with psycopg.connect(EmbeddedPostgres(var).url()) as connection:
        row = connection.execute(
            "SELECT log FROM catalog_build ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    assert row, published.stdout + published.stderr
    log = row[0]
    assert "Installing from wheels alone failed" in log, log
    line = next(text for text in log.splitlines() if "HOSTILE-REPORT" in text)
    report = ast.literal_eval(line.split("HOSTILE-REPORT", 1)[1].strip())
    assert report["uid"] == sandbox.SANDBOX_UID, report
    assert report["credentials"] in ("FileNotFoundError", "PermissionError"), report
    assert report["database_tcp"] != "'connected'", report
    assert "403" in report["database_proxy"], report
    assert not {"SECRET_KEY", "DATABASE_URL"} & set(report["environ"]), report
    assert report["database_socket"] != "'connected'", report
    assert not (server_tmp_path / "marker-written-by-a-build").exists()
