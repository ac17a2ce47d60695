"""The whole publishing path as a CI job uses it: the `marketplace` command-line tool, run
from a shell against a live server, uploads a model folder; a real Celery worker builds it;
the tool follows the log, publishes the version and exits 0. Webhooks fire on the way."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from catalog.models import Build, BuildStatus, Version
from marketplace.celery import app as celery_app
from tests.catalog.conftest import ECHO_MODEL, write_package
from tests.factories import UserFactory, make_key
from tests.receivers import allow_outbound
from tests.receivers import webhook_receiver as receiving_webhooks

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def build_worker(settings):
    """A real Celery worker (in a thread of this process, so it uses the test database)
    consuming a queue of this test's own."""
    from celery.contrib.testing.worker import start_worker

    queue = f"test-builds-{uuid.uuid4().hex[:8]}"
    settings.CATALOG_BUILD_QUEUE = queue
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{queue}-default"
    queues = [queue, f"{queue}-default"]
    with start_worker(
        celery_app,
        queues=queues,
        perform_ping_check=False,
        pool="solo",
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        yield queue


@pytest.fixture
def webhook_receiver(settings):
    with receiving_webhooks() as receiver:
        allow_outbound(settings, receiver[0])
        yield receiver


def test_cli_publishes_a_folder_from_a_shell(live_server, build_worker, tmp_path, webhook_receiver):
    user = UserFactory(username="ci-bot")
    _key, secret = make_key(user)
    package = write_package(tmp_path / "echo", ECHO_MODEL)
    hook_url, received = webhook_receiver
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    hook = client.post(
        "/v1/teams/ci-bot/webhooks",
        {
            "url": hook_url,
            "events": ["build.succeeded", "version.published"],
        },
        format="json",
    )
    assert hook.status_code == 201, hook.content
    hook_secret = hook.json()["secret"]

    env = {
        **os.environ,
        "MARKETPLACE_API_URL": live_server.url,
        "MARKETPLACE_API_KEY": secret,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    cli = Path(sys.executable).parent / "marketplace"
    result = subprocess.run(
        [
            str(cli),
            "publish",
            str(package),
            "--bump",
            "minor",
            "--visibility",
            "public",
            "--release-notes",
            "from CI",
            "--timeout",
            "300",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Published ci-bot/echo 0.1.0 (public)" in result.stdout
    assert "Build succeeded" in result.stderr  # the log, followed live
    build = Build.objects.get(model__slug="echo")
    assert build.status == BuildStatus.SUCCEEDED
    assert Version.objects.get(model__slug="echo").release_notes == "from CI"

    called = subprocess.run(
        [str(cli), "search", "echo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert called.returncode == 0 and "ci-bot/echo" in called.stdout

    # Deliveries run on the worker too; each is signed with the webhook's secret.
    import time

    deadline = time.monotonic() + 30
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    events = {}
    for headers, body in received:
        expected = "sha256=" + hmac.new(hook_secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Marketplace-Signature"] == expected
        events[headers["X-Marketplace-Event"]] = json.loads(body)
    assert set(events) == {"build.succeeded", "version.published"}
    assert events["version.published"]["version"]["version"] == "0.1.0"


def test_cli_reports_a_failed_build_and_exits_non_zero(live_server, build_worker, tmp_path):
    user = UserFactory(username="ci-bot")
    _key, secret = make_key(user)
    broken = {
        **ECHO_MODEL,
        "predict.py": "def load():\n    raise RuntimeError('weights missing')\n"
        "def apply(x, s):\n    return x\n",
    }
    package = write_package(tmp_path / "broken", broken)
    env = {
        **os.environ,
        "MARKETPLACE_API_URL": live_server.url,
        "MARKETPLACE_API_KEY": secret,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "marketplace"),
            "publish",
            str(package),
            "--bump",
            "patch",
            "--visibility",
            "public",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert result.returncode == 1
    assert "weights missing" in result.stderr
    assert not Version.objects.exists()
