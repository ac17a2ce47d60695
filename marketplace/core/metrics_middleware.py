"""Counts and times every HTTP request by its URL pattern name (never its raw path, so
/v1/algo/a/b and /v1/algo/c/d are one series) and writes the request's one log line."""

from __future__ import annotations

import time

from django.conf import settings

from . import metrics
from .logging import log_request, request_log_context

UNMATCHED_ROUTE = "unmatched"
STATIC_ROUTE = "static"


def route_label(request) -> str:
    """The URL pattern's name ("gateway:invoke"), its pattern when it has no name, "static"
    for static files and "unmatched" for paths no pattern matched (404s)."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or UNMATCHED_ROUTE
    if settings.STATIC_URL and request.path.startswith(settings.STATIC_URL):
        return STATIC_ROUTE
    return UNMATCHED_ROUTE


class MetricsMiddleware:
    """First in MIDDLEWARE, so its time and status are what the client got."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        with request_log_context() as fields, metrics.HTTP_REQUESTS_IN_PROGRESS.track_inprogress():
            response = self.get_response(request)
        seconds = time.perf_counter() - started
        route = route_label(request)
        metrics.http_request_finished(
            method=request.method, route=route, status=response.status_code, seconds=seconds
        )
        if route != STATIC_ROUTE:
            log_request(request, response, route=route, seconds=seconds, fields=fields)
        return response
