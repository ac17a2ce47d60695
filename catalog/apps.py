from django.apps import AppConfig

from marketplace.core import health

from . import snippets
from .health import check_search
from .search import engines
from .snippets.languages import (
    cli,
    csharp,
    curl,
    go,
    java,
    javascript_fetch,
    nodejs,
    php,
    python_algorithmia,
    python_requests,
    r,
    ruby,
    rust,
)


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
        for language in (
            curl.Curl(),
            python_requests.PythonRequests(),
            python_algorithmia.PythonAlgorithmia(),
            javascript_fetch.JavaScriptFetch(),
            nodejs.NodeJs(),
            go.Go(),
            java.Java(),
            ruby.Ruby(),
            php.Php(),
            r.R(),
            csharp.CSharp(),
            rust.Rust(),
            cli.Cli(),
        ):
            snippets.snippet_languages.add(language.slug, language)
