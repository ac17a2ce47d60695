"""Worker heartbeats, written by a thread that every Celery worker starts when it is ready."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone

from .models import WorkerHeartbeat

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 10
ALIVE_WITHIN = timedelta(seconds=45)


def record_heartbeat(*, hostname: str, queues: list[str], started_at) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"queues": queues, "started_at": started_at, "last_seen": timezone.now()},
    )


def forget_worker(*, hostname: str) -> None:
    WorkerHeartbeat.objects.filter(hostname=hostname).delete()


def live_workers():
    return WorkerHeartbeat.objects.filter(last_seen__gte=timezone.now() - ALIVE_WITHIN)


def start_heartbeat_thread(*, hostname: str, queues: list[str]) -> threading.Event:
    stop = threading.Event()
    started_at = timezone.now()

    def beat() -> None:
        while not stop.is_set():
            try:
                close_old_connections()
                record_heartbeat(hostname=hostname, queues=queues, started_at=started_at)
            except Exception:  # a database hiccup must not kill the worker
                logger.warning("worker heartbeat failed", exc_info=True)
            stop.wait(HEARTBEAT_INTERVAL_SECONDS)

    threading.Thread(target=beat, name="marketplace-heartbeat", daemon=True).start()
    return stop
