from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalogue"

    def ready(self):
        from .search import signals  # noqa: F401  (connects the search indexing receivers)
