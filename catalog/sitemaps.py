"""How crawlers find the catalogue: /sitemap.xml (django.contrib.sitemaps) lists the site's
public pages, every public model's page and the profiles of the namespaces that have one,
and nothing else (no private model, no page only members reach); /robots.txt points at it
and keeps crawlers out of private and owner areas."""

from __future__ import annotations

from django.contrib.sitemaps import Sitemap
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from . import selectors


class StaticPagesSitemap(Sitemap):
    changefreq = "daily"
    priority = 0.8

    def items(self) -> list[str]:
        return ["catalog:home", "catalog:explore", "core:docs", "billing_budgets:pricing"]

    def location(self, item: str) -> str:
        return reverse(item)


class ModelSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.6
    limit = 10_000

    def items(self):
        return selectors.public_models()

    def location(self, model) -> str:
        return model.url

    def lastmod(self, model):
        return model.updated_at


class OwnerSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.4
    limit = 10_000

    def items(self):
        return selectors.public_owners()

    def location(self, team) -> str:
        return reverse("catalog:owner", kwargs={"owner": team.slug})


SITEMAPS = {"pages": StaticPagesSitemap, "models": ModelSitemap, "owners": OwnerSitemap}

# Private and owner areas: accounts, teams (usage, budgets, audit), keys, billing, the
# dashboard and request log, staff pages, publishing, the API, and a model's monitoring and
# builds.
DISALLOWED = (
    "/accounts/",
    "/admin/",
    "/admin-report/",
    "/audit/",
    "/billing/",
    "/dashboard/",
    "/keys/",
    "/new/",
    "/requests/",
    "/teams/",
    "/v1/",
    "/*/monitoring",
    "/*/builds/",
)


@require_safe
def robots_txt(request) -> HttpResponse:
    lines = [
        "User-agent: *",
        *(f"Disallow: {path}" for path in DISALLOWED),
        "",
        f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
