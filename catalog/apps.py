from django.apps import AppConfig

from marketplace.core import health

from .health import check_search


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalogue"

    def ready(self):
        # Imported here because Django's app loading forces it: the receivers use models.
        from .search import signals  # noqa: F401, PLC0415  (connects the search indexing receivers)

        health.checks.add("search", check_search)
