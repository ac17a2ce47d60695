from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    label = "gateway"
    verbose_name = "Invocation gateway"

    def ready(self):
        # Imported here: they import models, which Django loads after every apps.py.
        from catalog.pages import model_page_facts  # noqa: PLC0415

        from .selectors import model_usage_summary  # noqa: PLC0415

        model_page_facts.add("usage", lambda model, *, is_member: model_usage_summary(model))
