"""What a call answers its caller, whichever path took it: the DRF view (`api.InvokeApi`)
and the hot path (`hot_path.HotPath`) both render the `Answer` made here, so the envelope,
the status codes and the headers of a call are decided in one place."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from .models import InvocationStatus


@dataclass(frozen=True)
class Answer:
    """`data` is rendered as JSON; `content` (with `content_type`) is sent as it is."""

    status: int
    headers: dict
    data: object = None
    content: bytes | None = None
    content_type: str = "application/json"


def call_answer(outcome, call, request_id: str) -> Answer:
    """The answer to a call `services.invoke` accepted (`outcome`)."""
    invocation = outcome.invocation
    headers = {**outcome.rate_headers, "X-Request-ID": request_id}
    if call.output == "void":
        return Answer(202, headers, {"async": "void", "request_id": request_id})
    failure = _failure(outcome, request_id, headers, raw=call.output == "raw")
    if failure is not None:
        return failure
    if call.output == "raw":
        return _raw(invocation, headers)
    metadata = {
        "content_type": invocation.result_content_type,
        "duration": round(invocation.model_duration or 0.0, 6),
    }
    if invocation.cold_start:  # the model's process was started for this call
        metadata["cold_start"] = True
    if invocation.want_stdout:  # asked for, by a member of the owner (services.invoke)
        metadata["stdout"] = invocation.stdout
    body = {"result": invocation.result, "metadata": metadata, "request_id": request_id}
    return Answer(200, headers, body)


def _failure(outcome, request_id: str, headers: dict, *, raw: bool) -> Answer | None:
    """The answer for a call that did not succeed, or None. A model error is a 200 with the
    error object, as Algorithmia answered it, except with `output=raw`, where a 200 would
    be taken for the result: there it is a 400 with the same body (what Algorithmia
    documented, and what its clients raise `ApiError` on)."""
    invocation = outcome.invocation
    if invocation.status == InvocationStatus.TIMEOUT:
        error = {
            "message": (invocation.error or {}).get("message", "timed out"),
            "error_type": "TimeoutError",
        }
        return Answer(504, headers, {"error": error, "request_id": request_id})
    if invocation.error:
        error = {k: v for k, v in invocation.error.items() if k in ("message", "error_type")}
        if outcome.is_member and invocation.error.get("stacktrace"):
            error["stacktrace"] = invocation.error["stacktrace"]
            error["stack_trace"] = invocation.error["stacktrace"]  # the Algorithmia client's name
        return Answer(400 if raw else 200, headers, {"error": error, "request_id": request_id})
    return None


def _raw(invocation, headers: dict) -> Answer:
    kind = invocation.result_content_type
    if kind == "binary":
        content = base64.b64decode(invocation.result or "")
        return Answer(200, headers, content=content, content_type="application/octet-stream")
    if kind == "text":
        content = (invocation.result or "").encode()
        return Answer(200, headers, content=content, content_type="text/plain; charset=utf-8")
    content = json.dumps(invocation.result).encode()
    return Answer(200, headers, content=content, content_type="application/json")
