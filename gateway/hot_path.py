"""The hot path: a call (`POST /v1/algo/{owner}/{name}[/{version}]` with an API key)
answered without Django's middleware stack and DRF, by the same services as the DRF view
(`api.InvokeApi`): `calls.parse_call`, `services.invoke`, `answers.call_answer`.

`HotPath` wraps the project's WSGI application (marketplace/wsgi.py). It takes a request only
when nothing in it needs what it skips: a POST to one of the two call routes (matched by
Django's own URL resolver), an API key in the Authorization header that authenticates, no
cookie (a browser session and its CSRF check), no Origin (CORS), a Content-Length within
GATEWAY_MAX_BODY_BYTES (no chunked body), an Accept that JSON satisfies and an allowed Host,
synchronous or not (`services.invoke` queues an `output=void` or `webhook=` call). Anything
else, including a key that does not authenticate (which the login throttle counts), goes to
Django untouched:
the body it may have read is handed back. Once it has taken a request, it does what the
middleware would have done for it: the request id (`X-Request-ID`), the security headers
(SecurityMiddleware, XFrameOptionsMiddleware, CORS's `Vary`), DRF's `Allow`, the request's log
line and metrics (`MetricsMiddleware`), the audit context, Django's request_started and
request_finished signals (which keep database connections healthy), and every error as
the documented envelope (`core.api.error_answer`). GATEWAY_HOT_PATH=false turns it off."""

from __future__ import annotations

import functools
import io
import time
import uuid

from corsheaders.middleware import CorsMiddleware
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest, get_script_name
from django.db import DatabaseError
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, get_urlconf, resolve, set_script_prefix
from rest_framework.renderers import JSONRenderer

from marketplace.accounts.authentication import key_from_header
from marketplace.accounts.principals import Principal
from marketplace.accounts.services import api_key_authenticate
from marketplace.audit import context as audit_context
from marketplace.core import metrics
from marketplace.core.api import error_answer
from marketplace.core.errors import ApiError, AuthenticationError
from marketplace.core.logging import log_request, request_log_context

from . import refusals, services
from .answers import Answer, call_answer
from .calls import parse_call

ROUTES = frozenset({"api-invoke", "api-invoke-version"})
_ALLOW = "POST, OPTIONS"
_JSON_ACCEPTED = ("*/*", "application/*", "application/json")
_renderer = JSONRenderer()


def _unused(request):  # the middleware below only post-process a response
    raise AssertionError("not called")


class HotPath:
    def __init__(self, application):
        self.application = application
        self._security = SecurityMiddleware(_unused)
        self._frame_options = XFrameOptionsMiddleware(_unused)
        self._cors = CorsMiddleware(_unused)

    def __call__(self, environ, start_response):
        response = self.respond(environ)
        if response is None:
            return self.application(environ, start_response)
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return response  # gunicorn closes it: request_finished

    def respond(self, environ) -> HttpResponse | None:
        """The answer to a call the hot path takes, or None for Django to answer."""
        if not settings.GATEWAY_HOT_PATH or not _plausible(environ):
            return None
        started = time.perf_counter()
        set_script_prefix(get_script_name(environ))
        request = WSGIRequest(environ)
        match = _call_route(request)
        if match is None or not self._secure_enough(request):
            return None
        body = request.body
        signals.request_started.send(sender=HotPath, environ=environ)
        key = _authenticated_key(environ)
        if key is None:
            # Django answers it (401, and the login throttle counts the failure).
            environ["wsgi.input"] = io.BytesIO(body)
            return None
        request.request_id = str(uuid.uuid4())
        request.resolver_match = match
        request.user, request.auth = key.created_by, key
        token = audit_context.bind(request)
        try:
            with (
                request_log_context() as fields,
                metrics.HTTP_REQUESTS_IN_PROGRESS.track_inprogress(),
            ):
                response = self._answer(request, match.kwargs, key)
        finally:
            audit_context.unbind(token)
        response._handler_class = HotPath
        seconds = time.perf_counter() - started
        route = match.view_name
        metrics.http_request_finished(
            method=request.method, route=route, status=response.status_code, seconds=seconds
        )
        log_request(request, response, route=route, seconds=seconds, fields=fields)
        return response

    def _answer(self, request, kwargs: dict, key) -> HttpResponse:
        request_id = request.request_id
        principal = Principal(key.created_by, key)
        try:
            try:
                call = parse_call(request)
            except ApiError as error:
                refusals.refused_call_record(
                    principal=principal,
                    owner=kwargs["owner"],
                    name=kwargs["name"],
                    version=kwargs.get("version"),
                    error=error,
                    request_id=request_id,
                )
                raise
            outcome = services.invoke(
                principal=principal,
                owner=kwargs["owner"],
                name=kwargs["name"],
                version=kwargs.get("version"),
                call=call,
                project=request.headers.get("X-Project", "").strip(),
                request_id=request_id,
            )
            answer = call_answer(outcome, call, request_id)
        except Exception as exc:
            status, body, headers = error_answer(exc, request_id, where="HotPath")
            answer = Answer(status, {**headers, "X-Request-ID": request_id}, body)
        return self._rendered(request, answer)

    def _rendered(self, request, answer: Answer) -> HttpResponse:
        """The answer with the headers the DRF view and the middleware would have given it."""
        if answer.content is None:
            content, content_type = _renderer.render(answer.data), "application/json"
        else:
            content, content_type = answer.content, answer.content_type
        response = HttpResponse(content, status=answer.status, content_type=content_type)
        for name, value in answer.headers.items():
            response[name] = value
        response["Allow"] = _ALLOW  # as DRF's APIView says on every answer
        response["Content-Length"] = str(len(content))
        self._cors.add_response_headers(request, response)  # Vary: origin
        self._security.process_response(request, response)
        self._frame_options.process_response(request, response)
        return response

    def _secure_enough(self, request) -> bool:
        """The Host is allowed and SecurityMiddleware would not redirect to HTTPS."""
        try:
            request.get_host()
        except DisallowedHost:
            return False
        return self._security.process_request(request) is None


def _plausible(environ) -> bool:
    """What the environ alone tells: a POST under /v1/algo/ with a key and a sized body, and
    nothing that needs the middleware the hot path skips."""
    if environ.get("REQUEST_METHOD") != "POST":
        return False
    if not environ.get("PATH_INFO", "").startswith("/v1/algo/"):
        return False
    if not environ.get("HTTP_AUTHORIZATION") or environ.get("HTTP_COOKIE"):
        return False
    if "HTTP_ORIGIN" in environ or "HTTP_TRANSFER_ENCODING" in environ:
        return False
    length = environ.get("CONTENT_LENGTH") or ""
    if not length.isdigit() or int(length) > settings.GATEWAY_MAX_BODY_BYTES:
        return False
    accept = environ.get("HTTP_ACCEPT")
    return accept is None or any(kind in accept for kind in _JSON_ACCEPTED)


def _call_route(request):
    return _route_of(get_urlconf() or settings.ROOT_URLCONF, request.path_info)


@functools.lru_cache(maxsize=4096)
def _route_of(urlconf: str, path: str):
    """The call route `path` resolves to (or None), remembered: Django's resolver tries every
    pattern for every request, and most calls repeat a few paths."""
    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return None
    return match if match.view_name in ROUTES else None


def _authenticated_key(environ):
    """The key that authenticates, or None for Django to answer: a refused key (the login
    throttle counts it there) or a failure to look it up (a database that is down is a 503
    there)."""
    raw_key = key_from_header(environ["HTTP_AUTHORIZATION"])
    if raw_key is None:
        return None
    try:
        return api_key_authenticate(raw_key)
    except (AuthenticationError, DatabaseError):
        return None
