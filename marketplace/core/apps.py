from celery import signals
from django.apps import AppConfig
from django.db import close_old_connections

from . import health, metrics


class CoreConfig(AppConfig):
    name = "marketplace.core"
    label = "core"
    verbose_name = "Platform core"

    def ready(self):
        # Imported here: heartbeat imports models, which Django loads after every apps.py, and
        # api_schema registers the schema's API-key authentication extension by being imported
        # (drf-spectacular's documentation advises doing that in ready()).
        from . import api_schema, heartbeat  # noqa: F401, PLC0415

        signals.worker_ready.connect(heartbeat.on_worker_ready, dispatch_uid="core.heartbeat")
        signals.worker_shutdown.connect(heartbeat.on_worker_shutdown, dispatch_uid="core.heartbeat")
        # A task's database connections are kept or dropped as after a web request
        # (CONN_MAX_AGE, broken ones dropped); see CELERY_DB_REUSE_MAX.
        signals.task_prerun.connect(_close_old_connections, dispatch_uid="core.connections")
        signals.task_postrun.connect(_close_old_connections, dispatch_uid="core.connections")
        health.checks.add("database", health.check_database)
        health.checks.add("broker", health.check_broker)
        health.checks.add("workers", heartbeat.check_workers)
        metrics.collectors.add("queue_depth", metrics.QueueDepthCollector())


def _close_old_connections(task=None, **kwargs) -> None:
    # A task applied eagerly runs inside its caller, whose connection is not the task's to
    # close (Celery's fixup skips these too).
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
