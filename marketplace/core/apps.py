from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "marketplace.core"
    label = "core"
    verbose_name = "Platform core"

    def ready(self):
        # Registers the schema's API-key authentication extension (drf-spectacular finds
        # extensions by import, as its documentation advises doing in ready()).
        from . import api_schema  # noqa: F401
