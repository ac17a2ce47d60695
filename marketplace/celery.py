import contextlib
import os

from celery import Celery, signals
from celery.beat import PersistentScheduler, SchedulingError
from celery.worker.control import control_command

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")


class ReconnectingScheduler(PersistentScheduler):
    """Celery beat's scheduler, except that a broker connection that broke (the broker or,
    for the embedded broker, PostgreSQL restarted) is opened anew on the next tick. The
    stock one keeps its first producer for good: on kombu's SQLAlchemy transport every
    periodic task after the restart then fails with "channel disconnected", and abandoned
    calls are never reaped."""

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        try:
            return super().apply_async(entry, producer, advance, **kwargs)
        except SchedulingError:
            self.__dict__.pop("producer", None)
            connection = self.__dict__.pop("connection", None)
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.release()
            raise


app = Celery("marketplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_scheduler = "marketplace.celery:ReconnectingScheduler"
app.autodiscover_tasks()

_heartbeat_stop = None


@signals.worker_ready.connect
def _warn_if_unsandboxed(sender, **kwargs):
    from execution.sandbox import warn_if_unsandboxed

    warn_if_unsandboxed(f"worker {sender.hostname}")


@signals.worker_ready.connect
def _start_heartbeat(sender, **kwargs):
    global _heartbeat_stop
    from marketplace.core.heartbeat import start_heartbeat_thread

    queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values())
    _heartbeat_stop = start_heartbeat_thread(hostname=sender.hostname, queues=queues)


@signals.worker_shutdown.connect
def _stop_heartbeat(sender, **kwargs):
    from marketplace.core.heartbeat import forget_worker

    if _heartbeat_stop is not None:
        _heartbeat_stop.set()
    # The database may already be gone at shutdown; the row then simply ages out.
    with contextlib.suppress(Exception):
        forget_worker(hostname=sender.hostname)


@control_command(args=[("request_id", str)], signature="<request_id>")
def cancel_invocation(state, request_id):
    """Broadcast by the celery execution backend: kill the call on this host if it is here."""
    from execution.runner_service import RunnerClient, RunnerUnavailable

    try:
        return {"canceled": RunnerClient().cancel(request_id)}
    except RunnerUnavailable:
        return {"canceled": False}
