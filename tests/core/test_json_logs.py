"""Structured logs: one JSON object per line, and one line per request (with the call it ran),
per call the runner serves, per build, and per call a Celery worker runs; from a real worker
process too."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from gateway.models import Invocation
from marketplace.core.logging import JsonFormatter
from tests.core.test_metrics import database_url
from tests.factories import make_key
from tests.gateway import conftest as gateway

ROOT = Path(__file__).resolve().parents[2]
# A line of the plain format, or of Celery's own ("[2025-01-01 12:00:00,000: INFO/...").
PLAIN_LOG_LINE = re.compile(
    r"^\[?\d{4}-\d\d-\d\d[ T][\d:,.]+:? (DEBUG|INFO|WARNING|ERROR|CRITICAL)"
)

# The gateway's fixtures: a runner service in a thread and a published model (ada/toolbox).
owner, runner, storage, toolbox = gateway.owner, gateway.runner, gateway.storage, gateway.toolbox


def as_json(record: logging.LogRecord) -> dict:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def lines_of(caplog, logger: str, when: str = "call") -> list[dict]:
    return [as_json(r) for r in caplog.get_records(when) if r.name == logger]


def client_with_key(user) -> tuple[APIClient, str]:
    key, secret = make_key(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client, key.prefix


# -- the formatter ---------------------------------------------------------------------------


def test_one_json_object_per_line_with_the_extra_fields():
    logger = logging.getLogger("marketplace.tests.json")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logger.makeRecord(
            logger.name,
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("twice",),
            sys.exc_info(),
            extra={"request_id": "abc", "duration_ms": 1.5, "when": object()},
        )
    entry = as_json(record)
    assert entry["level"] == "ERROR" and entry["logger"] == "marketplace.tests.json"
    assert entry["message"] == "failed twice"
    assert entry["time"].endswith("Z") and entry["pid"] == os.getpid()
    assert entry["request_id"] == "abc" and entry["duration_ms"] == 1.5
    assert entry["when"].startswith("<object")  # what JSON cannot hold is written as text
    assert "ValueError: bad\nthing" in entry["exception"]
    assert not {"args", "msg", "levelno", "exc_info", "created"} & set(entry)


def _settings_in_subprocess(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"LOG_FORMAT", "MARKETPLACE_ENV"}}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from marketplace import settings; "
            "print(settings.LOGGING['handlers']['console']['formatter'])",
        ],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "plain"),
        ({"LOG_FORMAT": "json"}, "json"),
        (
            {
                "MARKETPLACE_ENV": "production",
                "SECRET_KEY": "s3cret-for-real",
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
            },
            "json",
        ),
        (
            {
                "MARKETPLACE_ENV": "production",
                "SECRET_KEY": "s3cret-for-real",
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
                "LOG_FORMAT": "plain",
            },
            "plain",
        ),
    ],
)
def test_log_format_is_json_in_production_and_plain_in_development(env, expected):
    result = _settings_in_subprocess(**env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_an_unknown_log_format_is_refused():
    result = _settings_in_subprocess(LOG_FORMAT="xml")
    assert result.returncode != 0 and "LOG_FORMAT must be 'json' or 'plain'" in result.stderr


# -- the lines -------------------------------------------------------------------------------


def test_a_request_that_ran_no_call_has_its_line(caplog, client, db):
    caplog.set_level(logging.INFO, logger="marketplace.requests")
    response = client.get("/healthz")
    (line,) = lines_of(caplog, "marketplace.requests")
    assert line["request_id"] == response["X-Request-ID"]
    assert line["route"] == "core:healthz" and line["status"] == 200
    assert line["method"] == "GET" and line["path"] == "/healthz"
    assert line["duration_ms"] >= 0 and "model" not in line


@pytest.mark.slow
def test_a_call_has_one_request_line_with_key_model_version_and_outcome(caplog, toolbox, owner):
    caplog.set_level(logging.INFO)
    client, prefix = client_with_key(owner)
    response = client.post("/v1/algo/ada/toolbox/1", {"text": "hi"}, format="json")
    assert response.status_code == 200, response.content
    request_id = response["X-Request-ID"]

    requests = [
        line
        for line in lines_of(caplog, "marketplace.requests")
        if line["request_id"] == request_id
    ]
    assert len(requests) == 1, requests
    line = requests[0]
    assert line["key_prefix"] == prefix
    assert line["model"] == "ada/toolbox"
    assert line["version"] == "1.0.0"  # the version that ran, not the "1" asked for
    assert line["status"] == 200 and line["invocation_status"] == "succeeded"
    assert line["route"] == "api-invoke-version"
    assert line["duration_ms"] >= line["invocation_duration_ms"] > 0
    assert isinstance(line["cold_start"], bool)
    assert request_id in line["message"] and prefix in line["message"]
    # The call is in the request's line; it has no line of its own.
    assert not [
        x for x in lines_of(caplog, "marketplace.invocations") if x["request_id"] == request_id
    ]

    (served,) = [x for x in lines_of(caplog, "marketplace.runner") if x["request_id"] == request_id]
    assert served["build_id"] == str(toolbox.build_id)
    assert served["status"] == "ok" and served["duration_ms"] > 0


@pytest.mark.slow
def test_a_model_error_and_a_refused_call(caplog, toolbox, owner):
    caplog.set_level(logging.INFO)
    client, prefix = client_with_key(owner)
    failed = client.post("/v1/algo/ada/toolbox", {"fail": "boom"}, format="json")
    missing = client.post("/v1/algo/ada/nothing-here", {"text": "x"}, format="json")
    assert missing.status_code == 404
    lines = {line["request_id"]: line for line in lines_of(caplog, "marketplace.requests")}
    failure = lines[failed["X-Request-ID"]]
    assert failure["invocation_status"] == "failed" and failure["status"] == 200
    (served,) = [
        x
        for x in lines_of(caplog, "marketplace.runner")
        if x["request_id"] == failed["X-Request-ID"]
    ]
    assert served["status"] == "model_error"
    refused = lines[missing["X-Request-ID"]]
    assert refused["status"] == 404 and refused["model"] == "ada/nothing-here"
    assert refused["key_prefix"] == prefix and "invocation_status" not in refused


@pytest.mark.slow
def test_a_build_has_its_line(owner, storage, runner):
    # A handler on the logger itself: what other tests did to logging's propagation in this
    # process cannot hide the line.
    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.INFO)
            self.records = []

        def emit(self, record):
            self.records.append(record)

    keep = Keep()
    logger = logging.getLogger("marketplace.builds")
    previous = (logger.level, logger.disabled)
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    logger.disabled = False
    try:
        version = gateway.publish(owner, gateway.TOOLBOX_MODEL)
    finally:
        logger.removeHandler(keep)
        logger.setLevel(previous[0])
        logger.disabled = previous[1]
    (line,) = [
        x for x in (as_json(r) for r in keep.records) if x["build_id"] == str(version.build_id)
    ]
    assert line["status"] == "succeeded" and line["runtime"] == "python"
    assert line["model"] == "ada/toolbox" and line["duration_ms"] >= 0
    assert line["attempts"] == 1 and "error" not in line


@pytest.mark.slow
def test_a_celery_worker_writes_json_lines(toolbox, owner, settings, server_tmp_path):
    """A real worker process, with LOG_FORMAT=json, runs an asynchronous call: its line and
    Celery's own lines are JSON on stderr."""
    from django.db import connection

    queue = f"test-json-logs-{uuid.uuid4().hex[:8]}"
    settings.GATEWAY_ASYNC_QUEUE = queue
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "TEST_DATABASE_NAME", "PROMETHEUS_MULTIPROC_DIR"}
    }
    env.update(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "GATEWAY_ASYNC_QUEUE": queue,
            "RUNNER_SOCKET": settings.RUNNER_SOCKET,
            "MARKETPLACE_VAR_DIR": str(server_tmp_path / "var"),
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    stderr = server_tmp_path / "worker.err"
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "marketplace",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("w"),
        start_new_session=True,
    )
    try:
        client, prefix = client_with_key(owner)
        accepted = client.post("/v1/algo/ada/toolbox?output=void", {"text": "x"}, format="json")
        assert accepted.status_code == 202, accepted.content
        request_id = accepted.json()["request_id"]
        deadline = time.monotonic() + 90
        while Invocation.objects.get(pk=request_id).status in ("queued", "running"):
            assert worker.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    output = stderr.read_text().splitlines()
    # Python's own warnings printed before logging is set up (Celery's about running as root)
    # are not log lines; every log line, Celery's included, is JSON.
    assert not [line for line in output if PLAIN_LOG_LINE.match(line)], output
    lines = [json.loads(line) for line in output if line.startswith("{")]
    (ran,) = [x for x in lines if x.get("logger") == "marketplace.invocations"]
    assert ran["request_id"] == request_id and ran["key_prefix"] == prefix
    assert ran["model"] == "ada/toolbox" and ran["version"] == "1.0.0"
    assert ran["status"] == "succeeded" and ran["duration_ms"] > 0
    assert ran["pid"] == worker.pid  # the solo pool runs tasks in the worker's own process
    # Celery's own lines go through the same formatter.
    assert any(
        x["logger"] == "celery.app.trace"
        and "execute_invocation" in x["message"]
        and "succeeded" in x["message"]
        for x in lines
    ), lines
