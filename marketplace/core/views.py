from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularSwaggerView

from . import health
from .errors import ApiError, AuthorizationError, NotFoundError

API_PREFIX = "/v1/"


@require_GET
def docs(request):
    return render(request, "core/docs.html")


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    overall, components = health.readiness()
    body = {
        "status": overall,
        "components": {name: c.as_dict() for name, c in components.items()},
    }
    return JsonResponse(body, status=503 if overall == health.DOWN else 200)


def csrf_failure(request, reason=""):
    message = (
        "CSRF check failed: reload the page and try again. API clients should authenticate "
        "with an API key instead of a session cookie."
    )
    if request.path.startswith(API_PREFIX):
        return JsonResponse(AuthorizationError(message).body(), status=403)
    return render(request, "403.html", {"message": message}, status=403)


def page_not_found(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return JsonResponse(NotFoundError("No such API endpoint or resource").body(), status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith(API_PREFIX):
        return JsonResponse(ApiError().body(), status=500)
    return render(request, "500.html", status=500)


class ApiReferenceView(SpectacularSwaggerView):
    """The interactive API reference (Swagger UI), inside the site's own frame: its header,
    navigation and footer, and a way back to the docs."""

    template_name = "core/api_reference.html"
