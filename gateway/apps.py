import celery
from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

from marketplace.core import health


class GatewayConfig(AppConfig):
    name = "gateway"
    label = "gateway"
    verbose_name = "Invocation gateway"

    def ready(self):
        if celery.current_app.main != "marketplace":
            # Its calls would be queued on Celery's default broker, never the platform's.
            raise ImproperlyConfigured(
                "the platform's Celery app is not loaded: set DJANGO_SETTINGS_MODULE before "
                "anything imports the marketplace package (see marketplace/__init__.py)"
            )
        # Imported here: they import models, which Django loads after every apps.py.
        from catalog.pages import model_page_facts  # noqa: PLC0415

        from . import redelivery  # noqa: PLC0415
        from .lifecycle import execution_health  # noqa: PLC0415
        from .selectors import model_usage_summary  # noqa: PLC0415

        celery.current_app.steps["consumer"].add(redelivery.RepublishQueuedCalls)
        # Where calls run is the gateway's choice (this host, or dispatched to workers).
        health.checks.add("execution", health.timed(execution_health))

        model_page_facts.add("usage", lambda model, *, is_member: model_usage_summary(model))
