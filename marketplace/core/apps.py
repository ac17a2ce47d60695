from celery import signals
from django.apps import AppConfig

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
        health.checks.add("database", health.check_database)
        health.checks.add("broker", health.check_broker)
        health.checks.add("workers", heartbeat.check_workers)
        metrics.collectors.add("queue_depth", metrics.QueueDepthCollector())
