"""The `celery` execution backend with real processes: a platform whose calls go to the
Celery queue of their hardware class on the Redis on loopback, where a worker runs them on
its host's runner and the caller waits for the outcome through LISTEN/NOTIFY."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.live_platform import Platform, loopback_services_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not loopback_services_available(), reason="needs PostgreSQL and Redis on loopback"
    ),
]


def _call(platform: Platform, secret: str, path: str, body: bytes, content_type: str):
    request = urllib.request.Request(
        f"{platform.base}{path}",
        data=body,
        method="POST",
        headers={"Authorization": f"Simple {secret}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_calls_run_on_a_worker_through_the_hardware_queue(server_tmp_path):
    # A Redis database of this test's own: no other platform's worker takes its tasks.
    platform = Platform(
        server_tmp_path / "var",
        {
            "EXECUTION_BACKEND": "celery",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/11",
        },
    )
    try:
        platform.wait_ready()
        secret = platform.output().split("API key:", 1)[1].split()[0]
        folder = server_tmp_path / "shout"
        folder.mkdir()
        (folder / "model.toml").write_text(
            'name = "shout"\nruntime = "python"\nentrypoint = "predict.py:apply"\n'
            '[io]\nsample_input = "hey"\n'
        )
        (folder / "predict.py").write_text(
            "import time\n\ndef apply(text):\n    if text == 'slow':\n        time.sleep(30)\n"
            "    return text.upper()\n"
        )
        env = {
            **os.environ,
            "MARKETPLACE_API_URL": platform.base,
            "MARKETPLACE_API_KEY": secret,
            "XDG_CONFIG_HOME": str(server_tmp_path),
        }
        published = subprocess.run(
            [
                str(Path(sys.executable).parent / "marketplace"),
                "publish",
                str(folder),
                "--owner",
                "demo",
                "--bump",
                "major",
                "--visibility",
                "public",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert published.returncode == 0, published.stderr + platform.output()[-3000:]

        status, body = _call(platform, secret, "/v1/algo/demo/shout", b"celery", "text/plain")
        assert status == 200, body
        assert body["result"] == "CELERY" and body["metadata"]["content_type"] == "text"
        assert "marketplace.gateway.tasks.execute_invocation" in platform.output()

        status, body = _call(
            platform, secret, "/v1/algo/demo/shout?timeout=2", b"slow", "text/plain"
        )
        assert status == 504 and body["error"]["error_type"] == "TimeoutError"
        status, body = _call(platform, secret, "/v1/algo/demo/shout", b"again", "text/plain")
        assert status == 200 and body["result"] == "AGAIN"
    finally:
        assert platform.interrupt() == 0
