"""GET /metrics: token protection, the metric families after real calls, searches and builds,
gauges read at scrape time that fail soft, and, under gunicorn with several workers, counts
summed exactly across workers and kept when a worker dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway import conftest as gateway
from tests.gateway.conftest import key_client, publish
from tests.live_platform import free_port

# The gateway's fixtures: a runner service in a thread and a published model (ada/toolbox).
owner, runner, storage, toolbox = gateway.owner, gateway.runner, gateway.storage, gateway.toolbox

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-t0ken"


def metric_value(text: str, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def metric_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def scrape(client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return response.content.decode()


@pytest.fixture
def metrics_settings(settings):
    """The token, and an in-memory broker for the queue depths. Only for tests that send no
    task: the Celery app keeps the broker it first connected to for the whole process."""
    settings.METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = "memory://"
    return settings


# -- who may scrape ----------------------------------------------------------------------------


def test_a_token_is_required_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = "memory://"
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.content.decode()
    assert missing["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401 and "wrong metrics token" in wrong.content.decode()
    other_scheme = client.get("/metrics", HTTP_AUTHORIZATION=f"Simple {TOKEN}")
    assert other_scheme.status_code == 401
    right = client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}")
    assert right.status_code == 200
    assert right["Content-Type"].startswith("text/plain; version=")
    assert right["Cache-Control"] == "no-store"
    assert "marketplace_http_requests" in metric_names(right.content.decode())


def test_without_a_token_it_is_open_in_development_and_absent_in_production(client, settings):
    settings.METRICS_TOKEN = ""
    settings.CELERY_BROKER_URL = "memory://"
    settings.PRODUCTION = False
    assert client.get("/metrics").status_code == 200
    settings.PRODUCTION = True
    assert client.get("/metrics").status_code == 404


def test_only_get_and_head(client, metrics_settings):
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert client.head("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_openmetrics_when_the_scraper_asks_for_it(client, metrics_settings):
    response = client.get(
        "/metrics",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_ACCEPT="application/openmetrics-text; version=1.0.0",
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


# -- what is counted -------------------------------------------------------------------------


def test_requests_are_counted_by_route_name_not_path(client, metrics_settings):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get(f"/v1/no-such-thing/{uuid.uuid4().hex}")
    after = scrape(client)

    def delta(name, **labels):
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    assert delta("marketplace_http_requests_total", route="core:healthz", status="200") == 3
    assert delta("marketplace_http_requests_total", route="unmatched", status="404") == 1
    assert delta("marketplace_http_request_duration_seconds_count", route="core:healthz") == 3
    # No path (and so no request's own ids) ever becomes a label.
    assert "/v1/no-such-thing" not in after
    # The scrape itself is the one request in progress.
    assert metric_value(after, "marketplace_http_requests_in_progress") == 1


@pytest.mark.slow
def test_calls_searches_and_builds_are_counted(client, settings, toolbox, owner):
    # Building a model sends a task, so the broker stays the real one (see metrics_settings).
    settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    api = key_client(owner)
    for text in ("a", "b"):
        response = api.post("/v1/algo/ada/toolbox", {"text": text}, format="json")
        assert response.status_code == 200, response.content
    failed = api.post("/v1/algo/ada/toolbox", {"fail": "boom"}, format="json")
    assert failed.status_code == 200 and failed.json()["error"]["message"] == "boom"
    assert api.get("/v1/models", {"search": "toolbox"}).status_code == 200
    assert api.get("/v1/models/suggest", {"q": "tool"}).status_code == 200
    publish(owner, {**ECHO_MODEL})
    after = scrape(client)

    def delta(name, **labels):
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    model = "ada/toolbox"
    assert delta("marketplace_invocations_total", model=model, status="succeeded") == 2
    assert delta("marketplace_invocations_total", model=model, status="failed") == 1
    assert delta("marketplace_invocation_duration_seconds_count", model=model) == 3
    assert 1 <= delta("marketplace_cold_starts_total", model=model) <= 3
    assert delta("marketplace_http_requests_total", route="api-invoke", status="200") == 3
    assert delta("marketplace_search_duration_seconds_count", engine="postgresql", kind="search")
    assert delta("marketplace_search_duration_seconds_count", engine="postgresql", kind="suggest")
    assert (
        delta("marketplace_build_duration_seconds_count", runtime="python", status="succeeded") == 1
    )
    # Read at scrape time from the runner's /health.
    assert metric_value(after, "marketplace_runner_up") == 1
    assert metric_value(after, "marketplace_runner_pool_processes") >= 1
    assert metric_value(after, "marketplace_runner_pool_max_processes") == 6


ECHO_MODEL = {
    "model.toml": 'name = "echo"\nruntime = "python"\nentrypoint = "predict.py:apply"\n'
    '[io]\nsample_input = "hi"\n',
    "predict.py": "def apply(data):\n    return data\n",
}


def test_model_labels_are_bounded(monkeypatch):
    from marketplace.core import metrics

    monkeypatch.setattr(metrics, "_model_labels", set())
    monkeypatch.setattr(metrics, "MAX_MODEL_LABELS", 2)
    assert metrics.model_label("a/one") == "a/one"
    assert metrics.model_label("a/two") == "a/two"
    assert metrics.model_label("a/three") == "other"
    assert metrics.model_label("a/one") == "a/one"


# -- read at scrape time, failing soft -------------------------------------------------------


def test_queue_depth_from_the_broker(client, metrics_settings):
    from kombu import Connection

    queue = f"test-builds-{uuid.uuid4().hex[:8]}"
    metrics_settings.CATALOG_BUILD_QUEUE = queue
    with Connection("memory://") as connection:
        waiting = connection.SimpleQueue(queue)
        waiting.put({"n": 1})
        waiting.put({"n": 2})
        text = scrape(client)
        waiting.clear()
        waiting.close()
    assert metric_value(text, "marketplace_broker_up") == 1
    assert metric_value(text, "marketplace_queue_depth", queue=queue) == 2
    assert metric_value(text, "marketplace_queue_depth", queue="invocations") == 0


def test_a_component_that_is_down_only_reports_itself_down(client, metrics_settings):
    metrics_settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    metrics_settings.RUNNER_SOCKET = "/nonexistent/runner.sock"
    text = scrape(client)
    assert metric_value(text, "marketplace_broker_up") == 0
    assert metric_value(text, "marketplace_runner_up") == 0
    assert "marketplace_queue_depth" not in metric_names(text)
    assert "marketplace_http_requests" in metric_names(text)


# -- under gunicorn with several workers -----------------------------------------------------


def database_url(db: dict) -> str:
    user = urllib.parse.quote(db.get("USER") or "")
    password = f":{urllib.parse.quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or ""
    port = db.get("PORT") or "5432"
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{db['NAME']}?host={host}&port={port}"
    return f"postgresql://{user}{password}@{host}:{port}/{db['NAME']}"


class Gunicorn:
    """gunicorn serving the project's WSGI app, as run_platform starts it, against the test
    database, with a metrics directory of its own."""

    def __init__(self, directory: Path, database: str, workers: int = 3):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = database
        self.metrics_dir = directory / "prometheus"
        self.metrics_dir.mkdir()
        self.log = directory / "gunicorn.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in {
                "DATABASE_URL",
                "CELERY_BROKER_URL",
                "DJANGO_SETTINGS_MODULE",
                "TEST_DATABASE_NAME",
                "ELASTICSEARCH_URL",
            }
        }
        env.update(
            {
                "DATABASE_URL": database,
                "MARKETPLACE_VAR_DIR": str(directory / "var"),
                "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
                "METRICS_TOKEN": TOKEN,
                "LOG_FORMAT": "json",
                "RUNNER_SOCKET": str(directory / "no-runner.sock"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "marketplace.wsgi:application",
                "--config",
                "python:marketplace.core.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str, headers: dict | None = None) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.base}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def scrape(self) -> str:
        status, body = self.get("/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body
        return body

    def workers(self) -> list[int]:
        return sorted(p.pid for p in psutil.Process(self.process.pid).children())

    def wait_workers(self, count: int, timeout: float = 300) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            pids = self.workers()
            booted = {line.get("pid") for line in self.json_lines()}
            if len(pids) == count and set(pids) <= booted:
                return pids
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not run {count} workers\n{self.output()}")

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"gunicorn not ready\n{self.output()}")

    def json_lines(self) -> list[dict]:
        lines = []
        for line in self.output().splitlines():
            if line.strip():
                lines.append(json.loads(line))
        return lines

    def stop(self) -> None:
        """Stop gunicorn and make sure no worker outlives it (nor its database sessions)."""
        workers = psutil.Process(self.process.pid).children() if self.process.poll() is None else []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _gone, alive = psutil.wait_procs(workers, timeout=10)
        for process in alive:
            process.kill()


@pytest.fixture
def gunicorn(transactional_db, server_tmp_path):
    from django.db import connection

    server = Gunicorn(server_tmp_path, database_url(connection.settings_dict), workers=3)
    try:
        server.wait_ready()
        server.wait_workers(3)
        yield server
    finally:
        server.stop()


def _healthz_count(text: str) -> float:
    return metric_value(
        text, "marketplace_http_requests_total", route="core:healthz", method="GET", status="200"
    )


def _send_healthz(server: Gunicorn, count: int) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: server.get("/healthz")[0], range(count)))
    assert statuses == [200] * count


def _answering_pids(server: Gunicorn, route: str) -> dict[int, int]:
    answered: dict[int, int] = {}
    for line in server.json_lines():
        if line.get("logger") == "marketplace.requests" and line.get("route") == route:
            answered[line["pid"]] = answered.get(line["pid"], 0) + 1
    return answered


@pytest.mark.slow
def test_counts_are_summed_across_gunicorn_workers_and_survive_a_dead_worker(gunicorn):
    baseline = _healthz_count(gunicorn.scrape())
    sent = 0
    # Concurrent requests spread over the workers; send batches until at least two (and
    # ideally all three) workers answered some.
    while sent < 600:
        _send_healthz(gunicorn, 60)
        sent += 60
        if len(_answering_pids(gunicorn, "core:healthz")) == 3:
            break
    answered = _answering_pids(gunicorn, "core:healthz")
    assert len(answered) >= 2, answered
    assert set(answered) <= set(gunicorn.workers())

    # Whichever worker answers a scrape, the counts of all of them are summed, exactly.
    for _ in range(12):
        text = gunicorn.scrape()
        assert _healthz_count(text) == baseline + sent
        assert metric_value(text, "marketplace_http_requests_in_progress") == 1
    assert sum(answered.values()) >= sent  # the readiness probes answered some more

    # A worker dies; gunicorn starts another; what the dead one counted is still counted,
    # and its live gauge is gone (child_exit marked it dead).
    victim = max(answered, key=answered.get)
    assert (gunicorn.metrics_dir / f"gauge_livesum_{victim}.db").exists()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while victim in gunicorn.workers() or len(gunicorn.workers()) < 3:
        assert time.monotonic() < deadline, gunicorn.output()
        time.sleep(0.1)
    gunicorn.wait_workers(3)
    assert not (gunicorn.metrics_dir / f"gauge_livesum_{victim}.db").exists()
    for _ in range(12):
        text = gunicorn.scrape()
        assert _healthz_count(text) == baseline + sent
        assert metric_value(text, "marketplace_http_requests_in_progress") == 1
    _send_healthz(gunicorn, 30)
    assert _healthz_count(gunicorn.scrape()) == baseline + sent + 30

    # Every line gunicorn and its workers wrote is JSON; each request line has its id.
    lines = gunicorn.json_lines()
    requests = [line for line in lines if line.get("logger") == "marketplace.requests"]
    assert requests and all(uuid.UUID(line["request_id"]) for line in requests)
    assert all(
        {"time", "level", "message", "pid", "status", "duration_ms", "route"} <= set(line)
        for line in requests
    )
    assert any(line.get("logger") == "gunicorn.error" for line in lines)


@pytest.mark.slow
def test_queue_depth_of_the_embedded_broker_under_gunicorn(gunicorn):
    """kombu's SQLAlchemy transport on PostgreSQL (make run's broker): waiting messages are
    counted from its tables, whichever worker answers."""
    import gc

    from kombu import Connection
    from sqlalchemy.pool import NullPool

    text = gunicorn.scrape()
    assert metric_value(text, "marketplace_broker_up") == 1
    # The test database is also this test run's broker: earlier tests may have left tasks.
    builds = metric_value(text, "marketplace_queue_depth", queue="builds")
    invocations = metric_value(text, "marketplace_queue_depth", queue="invocations")
    broker = "sqla+" + gunicorn.database.replace("postgresql://", "postgresql+psycopg://", 1)
    with Connection(broker, transport_options={"poolclass": NullPool}) as connection:
        waiting = connection.SimpleQueue("builds")
        waiting.put({"n": 1})
        waiting.put({"n": 2})
        waiting.close()
    gc.collect()  # kombu's session holds its database connection until it is collected
    for _ in range(6):
        text = gunicorn.scrape()
        assert metric_value(text, "marketplace_queue_depth", queue="builds") == builds + 2
        assert metric_value(text, "marketplace_queue_depth", queue="invocations") == invocations
