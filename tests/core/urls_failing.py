"""URLs for error-shape tests: a view that crashes like a bug would."""

from django.urls import include, path

from marketplace.urls import urlpatterns as real_urlpatterns


def crash(request):
    raise RuntimeError("a bug")


urlpatterns = [
    path("v1/crash", crash),
    path("crash", crash),
    path("", include(real_urlpatterns)),
]

handler404 = "marketplace.core.views.page_not_found"
handler500 = "marketplace.core.views.server_error"
