"""A file's answer to GET: the whole file, or the single byte range a `Range` header asks for
(206), streamed; the hosted collections and the connectors' buckets answer alike."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime

from django.http import StreamingHttpResponse

from marketplace.core.errors import ApiError

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ApiError):
    status_code = 416
    error_type = "RangeNotSatisfiableError"

    def __init__(self, size: int):
        super().__init__(
            f"the range is outside the file ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        )


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, length) of a single satisfiable range; None to send the whole file. An
    unsatisfiable range raises 416."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        length = min(int(last), size)
        return size - length, length
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(size)
    return start, end - start + 1


def requested_span(request, size: int) -> tuple[tuple[int, int] | None, int, int]:
    """The span the request asks for (None: the whole file), its start and its length."""
    span = byte_range(request.headers.get("Range", ""), size)
    start, length = span if span is not None else (0, size)
    return span, start, length


def file_response(
    chunks: Iterable[bytes],
    *,
    span: tuple[int, int] | None,
    start: int,
    length: int,
    size: int,
    modified: datetime,
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        chunks, status=206 if span else 200, content_type="application/octet-stream"
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = format_datetime(modified, usegmt=True)
    response["X-Data-Type"] = "file"
    if span:
        response["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    return response
