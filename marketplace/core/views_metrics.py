"""GET /metrics: Prometheus' view of the platform (see marketplace.core.metrics).

With METRICS_TOKEN set, the scraper sends `Authorization: Bearer <METRICS_TOKEN>` (compared
in constant time); anything else is a 401. Without it, /metrics is open in development and
does not exist (404) in production, so it is never public by accident.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_safe

from . import metrics


def _bearer_token(request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
def metrics_view(request):
    expected = settings.METRICS_TOKEN
    if not expected:
        if settings.PRODUCTION:
            raise Http404("set METRICS_TOKEN to expose /metrics")
    else:
        given = _bearer_token(request)
        if given is None:
            return _unauthorized("/metrics needs the header Authorization: Bearer <METRICS_TOKEN>")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _unauthorized("wrong metrics token")
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
