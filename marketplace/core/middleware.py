from __future__ import annotations

import json
import uuid

from django.http import JsonResponse
from django.shortcuts import render

from .errors import ApiError, MethodNotAllowedError, error_for_status

API_PREFIX = "/v1/"


class ApiErrorShapeMiddleware:
    """Under /v1/, every error response has the documented JSON shape, including the ones
    Django answers itself before any API view runs (404 for unknown paths, 405 from plain
    views, 400 for a bad Host header or body, 403 for CSRF, 500)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 405 and not request.path.startswith(API_PREFIX):
            return _method_not_allowed_page(request, response)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json") and _has_shape(response):
            return response
        error = error_for_status(response.status_code, _message_for(response))
        shaped = JsonResponse(error.body(), status=response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID"):
            if header in response:
                shaped[header] = response[header]
        return shaped

    def process_exception(self, request, exception):
        """A service's ApiError raised in an HTML view becomes a proper error page."""
        if not isinstance(exception, ApiError):
            return None
        if request.path.startswith(API_PREFIX):
            return JsonResponse(exception.body(), status=exception.status_code)
        template = {403: "403.html", 404: "404.html"}.get(exception.status_code, "error.html")
        return render(
            request,
            template,
            {"message": exception.message, "error": exception},
            status=exception.status_code,
        )


def _method_not_allowed_page(request, response):
    """A page's 405 (require_GET and friends answer with an empty body) as a page that says
    what happened, keeping its Allow header."""
    if getattr(response, "streaming", False) or response.content:
        return response
    allowed = response.get("Allow", "")
    page = render(
        request,
        "error.html",
        {
            "message": f"This page does not accept {request.method[:20]} requests"
            + (f"; it accepts {allowed}." if allowed else "."),
            "error": MethodNotAllowedError(),
        },
        status=405,
    )
    if allowed:
        page["Allow"] = allowed
    return page


def _has_shape(response) -> bool:
    if getattr(response, "streaming", False):
        return True
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and isinstance(body.get("error"), dict)
        and "message" in body["error"]
        and "error_type" in body["error"]
    )


def _message_for(response) -> str | None:
    if response.status_code == 405 and "Allow" in response:
        return f"Method not allowed; allowed: {response['Allow']}"
    if response.status_code == 404:
        return "No such API endpoint or resource"
    if response.status_code == 400:
        return "Bad request"
    return None


class RequestIdMiddleware:
    """Every request gets an id, echoed in X-Request-ID (and, for calls, it is the
    invocation's id), so a user can quote it and an operator can find it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = str(uuid.uuid4())
        response = self.get_response(request)
        if not response.has_header("X-Request-ID"):
            response["X-Request-ID"] = request.request_id
        return response
