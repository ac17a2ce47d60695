from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Imported here: they import models, which Django loads after every apps.py.
        from catalog.pages import model_page_facts  # noqa: PLC0415

        from .selectors import compute_price_now, model_value  # noqa: PLC0415

        model_page_facts.add(
            "compute_price", lambda model, *, is_member: compute_price_now(model.hardware_class)
        )
        model_page_facts.add(
            "model_value", lambda model, *, is_member: model_value(model) if is_member else None
        )
