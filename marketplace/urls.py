from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from catalog.sitemaps import SITEMAPS, robots_txt
from marketplace.core.views import ApiReferenceView

# The gateway's routes come first: a call (/v1/algo/...) is the most frequent request, and
# Django tries the patterns in order. No other API route shares their prefixes.
api_patterns = [
    path("", include("gateway.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", ApiReferenceView.as_view(url_name="schema"), name="api-docs"),
    path("", include("marketplace.accounts.api_urls")),
    path("", include("catalog.api_urls")),
    path("", include("monitoring.api_urls")),
    path("", include("billing.api_urls")),
    path("", include("billing.budgets.api_urls")),
    path("", include("marketplace.audit.api_urls")),
    path("", include("data.api_urls")),
]

urlpatterns = [
    path("v1/", include(api_patterns)),
    path("admin/", admin.site.urls),
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
    path("robots.txt", robots_txt, name="robots"),
    path("", include("marketplace.core.urls")),
    path("", include("marketplace.accounts.urls")),
    path("", include("monitoring.urls")),  # before catalog's /{owner}/{name}
    path("", include("billing.urls")),
    path("", include("billing.budgets.urls")),
    path("", include("marketplace.audit.urls")),
    path("", include("data.urls")),
    path("", include("catalog.urls")),
]

handler404 = "marketplace.core.views.page_not_found"
handler500 = "marketplace.core.views.server_error"
