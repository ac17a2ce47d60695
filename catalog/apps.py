from django.apps import AppConfig

from marketplace.core import health

from .health import check_search
from .search import engines


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalogue"

    def ready(self):
        # Imported here because Django's app loading forces it: these modules import models.
        from .search import signals  # noqa: F401, PLC0415  (connects the search indexing receivers)
        from .search.engines import elasticsearch, postgres  # noqa: PLC0415

        health.checks.add("search", check_search)
        engines.ENGINES.add(postgres.NAME, postgres)
        engines.ENGINES.add(elasticsearch.NAME, elasticsearch)
