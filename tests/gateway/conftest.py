from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from rest_framework.test import APIClient

from catalog import builder, services
from execution.pool import PoolSettings, WarmPool
from execution.sandbox import sandbox_enabled
from marketplace.celery import app
from tests.catalog.conftest import write_package
from tests.factories import UserFactory, make_key
from tests.runner_thread import runner_serving

TOOLBOX_MODEL = {
    "model.toml": """
name = "toolbox"
title = "Toolbox"
tagline = "Echoes, shouts, reverses bytes, fails and sleeps on demand"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
task = "utility"
[io]
sample_input = {text = "hello"}
input_schema = "schema.json"
""",
    "schema.json": """
{"oneOf": [{"type": "object", "properties": {"text": {"type": "string"},
  "fail": {"type": "string"}, "sleep": {"type": "number"}, "print": {"type": "string"}}},
  {"type": "string"}, {"type": "array"}]}
""",
    "predict.py": """
import time


def apply(data):
    if isinstance(data, bytes):
        return data[::-1]
    if isinstance(data, str):
        return data.upper()
    if isinstance(data, dict):
        if "print" in data:
            print(data["print"])
        if "fail" in data:
            raise ValueError(data["fail"])
        if "sleep" in data:
            time.sleep(data["sleep"])
    return {"echo": data}
""",
}


@pytest.fixture
def runner(settings):
    """This host's runner service, on a socket of the test's own, in a thread."""
    directory = Path(tempfile.mkdtemp(prefix="runner-"))
    path = directory / "r.sock"
    settings.RUNNER_SOCKET = str(path)
    pool = WarmPool(PoolSettings(max_processes=6, max_per_version=2), sandbox=sandbox_enabled())
    with runner_serving(path, pool):
        yield pool
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def storage(settings):
    directory = Path(tempfile.mkdtemp(prefix="gw-storage-"))
    settings.MEDIA_ROOT = directory / "media"
    settings.VAR_DIR = directory / "var"
    settings.VAR_DIR.mkdir(parents=True)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def publish(user, files: dict, *, visibility="public", bump="major", folder=None):
    source = write_package(folder or Path(tempfile.mkdtemp()) / uuid.uuid4().hex, files)
    build, _ = services.build_create(actor=user, owner=user.personal_team, source=source)
    builder.execute_build(build.pk)
    build.refresh_from_db()
    assert build.status == "succeeded", build.log
    return services.version_publish(
        actor=user, model=build.model, build=build, bump=bump, visibility=visibility
    )


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="ada")


@pytest.fixture
def toolbox(owner, storage, runner):
    return publish(owner, TOOLBOX_MODEL)


def key_client(user, **kwargs) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(user, **kwargs)[1]}")
    return client


@pytest.fixture
def async_worker(settings):
    """A real Celery worker consuming this test's own async queue, in a thread of this
    process (so it shares the test database)."""
    queue = f"test-async-{uuid.uuid4().hex[:8]}"
    settings.GATEWAY_ASYNC_QUEUE = queue
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{queue}-default"
    # No embeddings on this worker: in threads of the test process, a NumPy encoding while
    # the test forks a build's installer deadlocked the fork (seen in a full fresh run), and
    # two of them held both threads while a queued call waited. make run keeps embeddings
    # on the prefork worker and calls on a worker of their own.
    settings.SEARCH_SEMANTIC = False
    with start_worker(
        app,
        queues=[queue, f"{queue}-default"],
        perform_ping_check=False,
        pool="threads",
        concurrency=2,
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        yield queue
