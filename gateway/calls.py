"""Parsing a call: the body in its three types, and the query parameters of the v1 API."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass

from django.conf import settings

from marketplace.core.errors import InputError, RequestTooLargeError
from marketplace.core.outbound import require_public_url

MAX_TIMEOUT_SECONDS = 3000
DEFAULT_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class CallInput:
    content_type: str  # json | text | binary
    data: object  # JSON value, str, or base64 text for binary
    size: int
    preview: str
    timeout: float
    stdout: bool
    output: str  # default | raw | void
    webhook: str
    # keep_io: keep this call's input and output (True), or not (False) whatever the key's
    # setting; None: as the key says (gateway.call_bodies).
    keep_io: bool | None = None


def _flag(raw: str | None, name: str) -> bool:
    if raw is None or raw == "":
        return False
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InputError(f"{name}: must be true or false, not {raw!r}")


def check_body_size(request) -> None:
    limit = settings.GATEWAY_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(
            f"the request body is {int(declared):,} bytes; the limit is {limit:,}"
        )
    _read_chunked_body(getattr(request, "_request", request), limit)


def _read_chunked_body(request, limit: int) -> None:
    """Django reads a body by its Content-Length only, so a chunked one (no length) would
    reach the model as an empty input. gunicorn de-chunks wsgi.input and marks it
    terminated: read it here, never more than one byte over the limit."""
    meta = request.META
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not chunked or meta.get("CONTENT_LENGTH") or hasattr(request, "_body"):
        return
    if not meta.get("wsgi.input_terminated"):
        raise InputError("this server needs a Content-Length header with the body")
    body = meta["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise RequestTooLargeError(f"the request body is over the limit of {limit:,} bytes")
    request._body = body
    request._stream = io.BytesIO(body)


def parse_call(request) -> CallInput:
    limit = settings.GATEWAY_MAX_BODY_BYTES
    check_body_size(request)
    body = request.body
    if len(body) > limit:
        raise RequestTooLargeError(f"the request body is over the limit of {limit:,} bytes")

    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if media_type in ("application/json", "") or media_type.endswith("+json"):
        if not body.strip() and media_type == "":
            raise InputError("send a body: JSON, text/plain or application/octet-stream")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            raise InputError("the body nests arrays or objects too deeply") from None
        content_type, preview = "json", body.decode("utf-8", errors="replace")
    elif media_type.startswith("text/"):
        try:
            data = body.decode(request.encoding or "utf-8")
        except (UnicodeDecodeError, LookupError):
            raise InputError("the text body is not valid in its charset") from None
        content_type, preview = "text", data
    elif media_type == "application/octet-stream":
        data = base64.b64encode(body).decode("ascii")
        content_type, preview = "binary", f"<{len(body)} bytes>"
    else:
        raise InputError(
            f"unsupported content type {media_type!r}: use application/json, text/plain or "
            "application/octet-stream"
        )

    params = request.GET  # a DRF Request hands this to its Django request
    raw_timeout = params.get("timeout")
    timeout = float(DEFAULT_TIMEOUT_SECONDS)
    if raw_timeout not in (None, ""):
        try:
            timeout = float(raw_timeout)
        except ValueError:
            raise InputError(f"timeout: must be a number of seconds, not {raw_timeout!r}") from None
        if not 0 < timeout <= MAX_TIMEOUT_SECONDS:
            raise InputError(f"timeout: must be between 0 and {MAX_TIMEOUT_SECONDS} seconds")
    output = (params.get("output") or "default").strip().lower()
    if output not in ("default", "raw", "void"):
        raise InputError("output: must be raw or void")
    webhook = (params.get("webhook") or "").strip()
    if webhook:
        if not webhook.startswith(("http://", "https://")):
            raise InputError("webhook: must be an http(s) URL")
        require_public_url(webhook, field="webhook")
    raw_keep = params.get("keep_io")
    return CallInput(
        content_type=content_type,
        data=data,
        size=len(body),
        preview=preview[:128],
        timeout=timeout,
        stdout=_flag(params.get("stdout"), "stdout"),
        output=output,
        webhook=webhook,
        keep_io=None if raw_keep in (None, "") else _flag(raw_keep, "keep_io"),
    )
