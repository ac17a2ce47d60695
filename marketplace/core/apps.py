from django.apps import AppConfig

from . import health, metrics


class CoreConfig(AppConfig):
    name = "marketplace.core"
    label = "core"
    verbose_name = "Platform core"

    def ready(self):
        # Registers the schema's API-key authentication extension (drf-spectacular finds
        # extensions by import, as its documentation advises doing in ready()).
        from . import api_schema  # noqa: F401, PLC0415

        health.checks.add("database", health.check_database)
        health.checks.add("broker", health.check_broker)
        health.checks.add("workers", health.check_workers)
        metrics.collectors.add("queue_depth", metrics.QueueDepthCollector())
