"""The `celery` execution backend with real processes: a platform whose calls go to the
Celery queue of their hardware class on the Redis on loopback, where a worker runs them on
its host's runner and the caller waits for the outcome through LISTEN/NOTIFY."""

from __future__ import annotations

import pytest

from tests.live_platform import (
    Platform,
    call_text,
    demo_key,
    loopback_services_available,
    publish_with_cli,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not loopback_services_available(), reason="needs PostgreSQL and Redis on loopback"
    ),
]


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
        secret = demo_key(platform)
        publish_with_cli(
            platform,
            secret,
            server_tmp_path,
            name="shout",
            sample_input="hey",
            predict="import time\n\ndef apply(text):\n    if text == 'slow':\n"
            "        time.sleep(30)\n    return text.upper()\n",
        )

        status, body = call_text(platform, secret, "/v1/algo/demo/shout", "celery")
        assert status == 200, body
        assert body["result"] == "CELERY" and body["metadata"]["content_type"] == "text"
        assert "marketplace.gateway.tasks.execute_invocation" in platform.output()

        status, body = call_text(platform, secret, "/v1/algo/demo/shout?timeout=2", "slow")
        assert status == 504 and body["error"]["error_type"] == "TimeoutError"
        status, body = call_text(platform, secret, "/v1/algo/demo/shout", "again")
        assert status == 200 and body["result"] == "AGAIN"
    finally:
        assert platform.interrupt() == 0
