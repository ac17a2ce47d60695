"""The data API's operations on a connected bucket (`/v1/data/s3://CONNECTOR/path`, as the
unchanged client sends `client.file("s3://...")`, and `/v1/connector/s3/CONNECTOR/path`),
in the same shapes as hosted data (data/api.py). A bucket has no ACL of ours: PATCH is
refused, and a listing carries none."""

from __future__ import annotations

from email.utils import format_datetime

from django.conf import settings
from django.http import HttpResponse
from rest_framework.response import Response

from marketplace.core.errors import InputError, NotFoundError

from . import connector_services
from .connector_bucket import ConnectorBucket, ObjectInfo, bucket_errors
from .connector_selectors import open_bucket
from .paths import ConnectorPath, quoted
from .permissions import DataActor
from .ranges import file_response, requested_span
from .selectors import decode_marker, encode_marker


def _timestamp(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _what(bucket: ConnectorBucket, path: ConnectorPath) -> ObjectInfo | None:
    """The file `path` names, None for a directory; 404 for neither."""
    info = bucket.head(path.relative)
    if info is None and not bucket.is_directory(path.relative):
        raise NotFoundError(f"no such file or directory {quoted(path.uri())}")
    return info


def get(request, path: ConnectorPath, *, marker: str | None):
    actor = DataActor.from_request(request)
    bucket = open_bucket(actor, path, operation="read", write=False)
    with bucket_errors(path.uri()):
        info = _what(bucket, path)
        if info is not None:
            span, start, length = requested_span(request, info.size)
            chunks = bucket.open(path.relative, start=start, length=length)
        else:
            listing = bucket.listing(
                path.relative, token=decode_marker(marker), page_size=settings.DATA_LIST_PAGE_SIZE
            )
    if info is None:
        body = {
            "folders": [{"name": name} for name in listing.folders],
            "files": [
                {
                    "filename": item.name,
                    "last_modified": _timestamp(item.last_modified),
                    "size": item.size,
                }
                for item in listing.files
            ],
        }
        if listing.token:
            body["marker"] = encode_marker(listing.token)
        return Response(body)
    return file_response(
        chunks,
        span=span,
        start=start,
        length=length,
        size=info.size,
        modified=info.last_modified,
    )


def head(request, path: ConnectorPath):
    actor = DataActor.from_request(request)
    bucket = open_bucket(actor, path, operation="read", write=False)
    with bucket_errors(path.uri()):
        info = _what(bucket, path)
    if info is None:
        return HttpResponse(headers={"X-Data-Type": "directory"})
    response = HttpResponse(
        content_type="application/octet-stream",
        headers={
            "X-Data-Type": "file",
            "Accept-Ranges": "bytes",
            "Last-Modified": format_datetime(info.last_modified, usegmt=True),
        },
    )
    response["Content-Length"] = str(info.size)
    return response


def put(request, path: ConnectorPath, *, source, declared_size):
    connector_services.connector_file_write(
        actor=DataActor.from_request(request),
        path=path,
        source=source,
        declared_size=declared_size,
    )
    return Response({"result": path.uri()})


def post(request, path: ConnectorPath, body: dict):
    name = body.get("name")
    if not isinstance(name, str):
        raise InputError('send {"name": "..."}')
    if body.get("acl") is not None:
        raise InputError("a connected bucket's permissions are the bucket's own: send no acl")
    connector_services.connector_directory_create(
        actor=DataActor.from_request(request), path=path, name=name
    )
    return Response({"result": path.child(name).uri()})


def patch(request, path: ConnectorPath):
    raise InputError(
        f"{quoted(path.uri())}: a connected bucket's permissions are the bucket's own; "
        "its connector is used by its namespace's keys and members"
    )


def delete(request, path: ConnectorPath, *, force: bool):
    deleted = connector_services.connector_object_delete(
        actor=DataActor.from_request(request), path=path, force=force
    )
    return Response({"result": {"deleted": deleted}})
