"""Shared pieces of the REST API: the exception handler that gives every error the documented
shape, and pagination."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, parsers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from .errors import (
    ApiError,
    AuthenticationError,
    AuthorizationError,
    InputError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    UnavailableError,
    UnsupportedMediaTypeError,
    error_for_status,
)

logger = logging.getLogger(__name__)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, where a body nested too deeply is a 400 like any other bad JSON
    (the json module raises RecursionError for it, which DRF would let through as a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                "JSON parse error - the body nests arrays or objects too deeply"
            ) from None


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


def _flatten_detail(detail) -> str:
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _flatten_detail(value)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_flatten_detail(item) for item in detail)
    return str(detail)


def _as_api_error(exc: Exception) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else None
        return InputError(_flatten_detail(detail), fields=fields)
    if isinstance(exc, exceptions.NotAuthenticated):
        return AuthenticationError()
    if isinstance(exc, exceptions.AuthenticationFailed):
        return AuthenticationError(_flatten_detail(exc.detail))
    if isinstance(exc, exceptions.PermissionDenied | PermissionDenied):
        message = _flatten_detail(getattr(exc, "detail", "")) or None
        if message == exceptions.PermissionDenied.default_detail:
            message = None
        return AuthorizationError(message)
    if isinstance(exc, exceptions.NotFound | Http404):
        message = _flatten_detail(getattr(exc, "detail", "")) or None
        if message in (exceptions.NotFound.default_detail, "No  matches the given query."):
            message = None
        return NotFoundError(message)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return MethodNotAllowedError(_flatten_detail(exc.detail))
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return UnsupportedMediaTypeError(_flatten_detail(exc.detail))
    if isinstance(exc, exceptions.Throttled):
        error = RateLimitError(_flatten_detail(exc.detail))
        if exc.wait is not None:
            error.headers["Retry-After"] = str(int(exc.wait) + 1)
        return error
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLargeError()
    if isinstance(exc, exceptions.ParseError):
        return InputError(_flatten_detail(exc.detail))
    if isinstance(exc, exceptions.APIException):
        return error_for_status(exc.status_code, _flatten_detail(exc.detail))
    if isinstance(exc, SuspiciousOperation):
        return InputError(str(exc) or None)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is unreachable (restarting, failing over): a 503 the caller may
        # retry, not a 500.
        logger.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return UnavailableError(
            "The service cannot reach its database right now; retry in a few seconds",
            headers={"Retry-After": "5"},
        )
    return None


def error_answer(exc: Exception, request_id: str | None, *, where) -> tuple[int, dict, dict]:
    """The status, body and headers answering `exc` (raised by the view `where`): the
    documented error body, with the request id. Call it while `exc` is being handled, so an
    unexpected error is logged with its traceback."""
    error = _as_api_error(exc)
    if error is None:
        logger.exception("unhandled error in %s", where)
        error = ApiError()
    headers = dict(error.headers)
    if error.status_code == status.HTTP_401_UNAUTHORIZED:
        headers.setdefault("WWW-Authenticate", 'Simple realm="api"')
    body = error.body()
    if request_id:
        body["request_id"] = request_id
    return error.status_code, body, headers


def exception_handler(exc: Exception, context: dict) -> Response | None:
    request = context.get("request")
    request_id = getattr(request, "request_id", None) or getattr(
        getattr(request, "_request", None), "request_id", None
    )
    code, body, headers = error_answer(exc, request_id, where=context.get("view"))
    return Response(body, status=code, headers=headers)
