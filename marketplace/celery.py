import contextlib
import os

from celery import Celery
from celery.beat import PersistentScheduler, SchedulingError
from kombu.transport import TRANSPORT_ALIASES

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


# The embedded broker's transport (kombu's SQLAlchemy transport woken by LISTEN/NOTIFY), by
# the URL scheme settings give it; kombu imports it the first time a connection uses it.
TRANSPORT_ALIASES.setdefault("pglisten", "marketplace.core.postgres_broker:Transport")

app = Celery("marketplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_scheduler = "marketplace.celery:ReconnectingScheduler"
app.autodiscover_tasks()
# What a worker does when it starts and stops (its heartbeat, the sandbox warning) and the
# commands it answers (cancel_invocation) are connected by the apps that own them.
