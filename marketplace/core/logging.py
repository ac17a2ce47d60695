"""Structured logs: a JSON formatter (one object per line) and the one line each request,
call, runner call and build writes.

LOG_FORMAT=json (the default in production) gives every handler of the LOGGING setting this
formatter: web, runner and Celery workers alike (Celery keeps its hands off the root logger,
CELERY_WORKER_HIJACK_ROOT_LOGGER=False, so its own lines go through the same handler).
Each line carries time, level, logger, message, pid, and the `extra` fields of the call:

    {"time": "2025-01-01T12:00:00.000Z", "level": "INFO", "logger": "marketplace.requests",
     "message": "POST /v1/algo/demo/iris 200 12.3 ms", "pid": 4242, "request_id": "...",
     "method": "POST", "route": "gateway:invoke", "status": 200, "duration_ms": 12.3,
     "key_prefix": "mk_ab12cd34", "model": "demo/iris", "version": "1.0.0", ...}

The loggers: `marketplace.requests` (one line per HTTP request; a request that ran a call
carries the call's model, version and outcome), `marketplace.invocations` (a call finished
outside a request: by a Celery worker or the reaper), `marketplace.runner` (one line per call
the runner service serves), `marketplace.builds` (one line per finished build).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import time
from datetime import UTC, datetime

request_logger = logging.getLogger("marketplace.requests")
invocation_logger = logging.getLogger("marketplace.invocations")
runner_logger = logging.getLogger("marketplace.runner")
build_logger = logging.getLogger("marketplace.builds")

# The attributes every LogRecord has; anything else on a record came in `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, pid, the
    record's extra fields, and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# -- the request's line ------------------------------------------------------------------------

_request_fields: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "marketplace_request_log_fields", default=None
)


@contextlib.contextmanager
def request_log_context():
    """While a request is answered: fields that code deeper down (the call it runs) adds to
    the request's one log line."""
    fields: dict = {}
    token = _request_fields.set(fields)
    try:
        yield fields
    finally:
        _request_fields.reset(token)


def log_request(request, response, *, route: str, seconds: float, fields: dict) -> None:
    auth = getattr(request, "auth", None)
    key_prefix = getattr(auth, "prefix", None)
    kwargs = getattr(getattr(request, "resolver_match", None), "kwargs", None) or {}
    extra = {
        "request_id": getattr(request, "request_id", None) or response.get("X-Request-ID"),
        "method": request.method,
        "path": request.path,
        "route": route,
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 3),
    }
    if key_prefix:
        extra["key_prefix"] = key_prefix
    if "owner" in kwargs and "name" in kwargs:
        extra["model"] = f"{kwargs['owner']}/{kwargs['name']}"
        if kwargs.get("version"):
            extra["version"] = kwargs["version"]
    extra.update(fields)
    summary = " ".join(
        f"{name}={extra[name]}"
        for name in ("request_id", "key_prefix", "model", "version")
        if extra.get(name)
    )
    request_logger.info(
        "%s %s %s %.1f ms %s",
        request.method,
        request.path,
        response.status_code,
        extra["duration_ms"],
        summary,
        extra=extra,
    )


# -- calls, runner calls, builds ------------------------------------------------------------


def invocation_fields(invocation) -> dict:
    return {
        "request_id": str(invocation.pk),
        "key_prefix": invocation.api_key.prefix if invocation.api_key_id else None,
        "model": invocation.model.full_name,
        "version": invocation.version_label,
        "invocation_status": str(invocation.status),
        "duration_ms": round(invocation.duration * 1000, 3)
        if invocation.duration is not None
        else None,
        "model_duration_ms": round(invocation.model_duration * 1000, 3)
        if invocation.model_duration is not None
        else None,
        "cold_start": bool(invocation.cold_start),
        "backend": invocation.backend,
        "is_async": invocation.is_async,
    }


def log_invocation(invocation) -> None:
    """A call's outcome: added to the line of the web request that ran it, or a line of its
    own when it finished elsewhere (a worker running an asynchronous call, the reaper)."""
    fields = invocation_fields(invocation)
    current = _request_fields.get()
    if current is not None:
        # The request line already has the request's duration and HTTP status.
        fields["invocation_duration_ms"] = fields.pop("duration_ms")
        current.update({k: v for k, v in fields.items() if k != "request_id"})
        return
    fields["status"] = fields["invocation_status"]
    invocation_logger.info(
        "invocation %s %s %s/%s %s ms",
        fields["request_id"],
        fields["status"],
        fields["model"],
        fields["version"],
        fields["duration_ms"],
        extra=fields,
    )


def log_build(build) -> None:
    duration = build.duration
    fields = {
        "build_id": str(build.pk),
        "model": build.model.full_name,
        "runtime": build.runtime,
        "status": build.status,
        "duration_ms": round(duration * 1000, 3) if duration is not None else None,
        "attempts": build.attempts,
    }
    if build.error:
        fields["error"] = build.error[:500]
    build_logger.info(
        "build %s of %s %s in %s ms",
        fields["build_id"],
        fields["model"],
        fields["status"],
        fields["duration_ms"],
        extra=fields,
    )


def logged_runner_call(method):
    """Decorates the runner service's call: one line per call it serves, with the request
    id, build, outcome (ok, model_error or the failure's kind), duration and cold start."""

    @functools.wraps(method)
    def call(self, body: dict) -> dict:
        started = time.perf_counter()
        answer: dict | None = None
        try:
            answer = method(self, body)
            return answer
        finally:
            if answer is None:
                status = "internal"
            elif answer.get("failure"):
                status = answer["failure"].get("kind", "failed")
            elif answer.get("error"):
                status = "model_error"
            else:
                status = "ok"
            fields = {
                "request_id": body.get("request_id"),
                "build_id": str(body.get("build_id")),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "cold_start": bool(answer and answer.get("cold_start")),
                "model_pid": answer.get("pid") if answer else None,
            }
            runner_logger.info(
                "runner call %s build %s %s %.1f ms",
                fields["request_id"],
                fields["build_id"],
                status,
                fields["duration_ms"],
                extra=fields,
            )

    return call
