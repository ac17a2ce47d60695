"""Worker heartbeats, written by a thread that every Celery worker starts when it is ready."""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from .health import DEGRADED, DOWN, OK, ComponentHealth, timed
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


_heartbeat_stop: threading.Event | None = None


def on_worker_ready(sender, **kwargs) -> None:
    """Celery's worker_ready (connected in CoreConfig.ready): report in every few seconds."""
    global _heartbeat_stop
    queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values())
    _heartbeat_stop = start_heartbeat_thread(hostname=sender.hostname, queues=queues)


def on_worker_shutdown(sender, **kwargs) -> None:
    if _heartbeat_stop is not None:
        _heartbeat_stop.set()
    # The database may already be gone at shutdown; the row then simply ages out.
    with contextlib.suppress(Exception):
        forget_worker(hostname=sender.hostname)


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


@timed
def check_workers() -> ComponentHealth:
    """OK when live workers consume the default queue and, unless calls are dispatched to
    hardware queues (EXECUTION_BACKEND=celery), the queue of asynchronous calls (`make run`
    starts a worker for each); degraded when either waits for a worker."""
    try:
        workers = dict(live_workers().values_list("hostname", "queues"))
    except Exception as exc:
        return ComponentHealth(DOWN, "celery", f"cannot read worker heartbeats: {exc}")
    if not workers:
        return ComponentHealth(
            DEGRADED, "celery", "no Celery worker has reported in; builds will wait"
        )
    alive = f"{len(workers)} alive: {', '.join(sorted(workers))}"
    consumed = {queue for queues in workers.values() for queue in queues or ()}
    needed = [settings.CELERY_TASK_DEFAULT_QUEUE]
    if settings.EXECUTION_BACKEND != "celery":
        needed.append(settings.GATEWAY_ASYNC_QUEUE)
    waiting = [queue for queue in needed if queue not in consumed]
    if waiting:
        return ComponentHealth(
            DEGRADED, "celery", f"{alive}; none consumes {', '.join(waiting)}, whose tasks wait"
        )
    return ComponentHealth(OK, "celery", alive)
