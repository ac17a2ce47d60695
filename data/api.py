"""The data API as Algorithmia had it: `/v1/data/{owner}/{collection}/{path}` (and
`/v1/connector/data/...`, the same thing), driven unchanged by Algorithmia's clients
(Algorithmia/datafile.py, datadirectory.py).

- GET a file: its bytes, streamed (a single `Range: bytes=...` gives 206); GET a directory,
  collection or owner: `{"folders": [{"name"}], "files": [{"filename", "last_modified",
  "size"}], "marker"}` one page at a time (`marker` from the previous page), with `"acl"`
  when asked (`acl=true`).
- HEAD: 200 with `X-Data-Type` (`file` or `directory`), and for a file `Content-Length` and
  `Last-Modified`; otherwise the error's status with its message in `X-Error-Message`.
- PUT a file: the body, streamed to storage; `{"result": "data://..."}`.
- POST to an owner or directory: `{"name", "acl"?}` creates a collection or a directory.
- PATCH a collection: `{"acl": {"read": [...]}}`.
- DELETE: a file, or a directory or collection (`force=true` when not empty);
  `{"result": {"deleted": FILES}}`.
"""

from __future__ import annotations

from email.utils import format_datetime

from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.errors import ApiError, InputError, NotFoundError

from . import connector_api, selectors, services
from .models import ACL_STRINGS, DataEntry
from .paths import (
    ALGO,
    ConnectorPath,
    is_connector_path,
    parse_connector_path,
    parse_data_path,
)
from .permissions import DataActor, require_data_scope
from .ranges import file_response, requested_span
from .storage import configured_storage


class AnyBodyParser(BaseParser):
    """Lets any content type through to PUT, which reads the body itself as a stream."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raise InputError("this endpoint reads its body itself")


def _timestamp(entry: DataEntry) -> str:
    moment = entry.modified_at
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _listing(page: selectors.Page, *, collections: bool) -> dict:
    body: dict = {
        "folders": [
            {
                "name": row.name,
                **({"acl": {"read": ACL_STRINGS[row.read_acl]}} if collections else {}),
            }
            for row in page.folders
        ],
        "files": [
            {"filename": row.name, "last_modified": _timestamp(row), "size": row.size}
            for row in page.files
        ],
    }
    if page.marker:
        body["marker"] = page.marker
    return body


def _folder(row, collection: bool) -> dict:
    if collection:
        return {"name": row.name, "acl": {"read": ACL_STRINGS[row.read_acl]}}
    return {"name": row.name}


def _flag(request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None or value.lower() in ("false", "0", ""):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise InputError(f"{name}: expected true or false")


def _header_safe(message: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in message)[:500]


def _body_source(request):
    """The request body as a stream: Django's (bounded by Content-Length), or, for a
    chunked body gunicorn has de-chunked, the WSGI input itself."""
    django_request = getattr(request, "_request", request)
    meta = django_request.META
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not meta.get("CONTENT_LENGTH"):
        if not meta.get("wsgi.input_terminated"):
            raise InputError("this server needs a Content-Length header with the body")
        return meta["wsgi.input"], None
    declared = meta.get("CONTENT_LENGTH") or "0"
    return django_request, int(declared) if declared.isdigit() else None


_PATH_PARAMETER = OpenApiParameter(
    "path",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="OWNER (a namespace or .my), then COLLECTION and the path inside it",
)


class _AclOutput(serializers.Serializer):
    read = serializers.ListField(child=serializers.CharField())


class _FolderOutput(serializers.Serializer):
    name = serializers.CharField()
    acl = _AclOutput(required=False, help_text="For the collections of an owner")


class _FileOutput(serializers.Serializer):
    filename = serializers.CharField()
    last_modified = serializers.CharField(help_text="e.g. 2026-12-07T19:00:00.000Z")
    size = serializers.IntegerField()


class ListingOutput(serializers.Serializer):
    folders = _FolderOutput(many=True)
    files = _FileOutput(many=True)
    marker = serializers.CharField(required=False, help_text="Absent on the last page")
    acl = _AclOutput(required=False, help_text="With acl=true")


class ResultOutput(serializers.Serializer):
    result = serializers.CharField(help_text="The data:// URI written or created")


class _Deleted(serializers.Serializer):
    deleted = serializers.IntegerField(help_text="How many files were deleted")


class DeletedOutput(serializers.Serializer):
    result = _Deleted()


class AclOutput(serializers.Serializer):
    acl = _AclOutput()


class CreateInput(serializers.Serializer):
    """Documents the body; the view checks it (Algorithmia's clients send exactly this)."""

    name = serializers.CharField()
    acl = _AclOutput(required=False)


class AclInput(serializers.Serializer):
    acl = _AclOutput()


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _is_models_own(path: str) -> bool:
    return path.removeprefix("data://").lstrip("/").split("/", 1)[0] == ALGO


class DataApi(APIView):
    parser_classes = [*APIView.parser_classes, AnyBodyParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        actor = DataActor.from_request(request)
        # A running model's own collection (data://.algo/...) is the model's, not its
        # caller's: the caller's data scopes do not govern it.
        models_own = actor.models_own_collection is not None and _is_models_own(
            kwargs.get("path", "")
        )
        if request.user.is_authenticated and not models_own:
            require_data_scope(actor, write=request.method not in READ_METHODS)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if self.request.method == "HEAD" and isinstance(exc, ApiError):
            # Where Algorithmia's client looks for a HEAD's message.
            response["X-Error-Message"] = _header_safe(exc.message)
        return response

    def _path(self, path: str):
        if is_connector_path(path):
            return parse_connector_path(path)
        return selectors.models_own_path(
            DataActor.from_request(self.request), parse_data_path(path)
        )

    @extend_schema(
        tags=["data"],
        summary="A file's bytes, or a directory's listing",
        parameters=[
            _PATH_PARAMETER,
            OpenApiParameter("marker", OpenApiTypes.STR),
            OpenApiParameter("acl", OpenApiTypes.BOOL),
        ],
        responses={
            (200, "application/json"): ListingOutput,
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request, path: str = ""):
        actor = DataActor.from_request(request)
        target = self._path(path)
        marker = request.query_params.get("marker")
        if isinstance(target, ConnectorPath):
            return connector_api.get(request, target, marker=marker)
        if target.collection is None:
            team = selectors.owner_team(actor, target)
            page = selectors.collections_page(actor, team, marker=marker)
            return Response(_listing(page, collections=True))
        found = selectors.object_get(actor, target)
        if found.is_file:
            return self._file(request, found.entry)
        parent = target.relative
        body = _listing(
            selectors.directory_page(found.collection, parent, marker=marker), collections=False
        )
        if _flag(request, "acl"):
            body["acl"] = {"read": ACL_STRINGS[found.collection.read_acl]}
        return Response(body)

    def _file(self, request, entry: DataEntry):
        span, start, length = requested_span(request, entry.size)
        chunks = configured_storage().open(entry.storage_key, start=start, length=length)
        return file_response(
            chunks,
            span=span,
            start=start,
            length=length,
            size=entry.size,
            modified=entry.modified_at,
        )

    @extend_schema(exclude=True)
    def head(self, request, path: str = ""):
        try:
            actor = DataActor.from_request(request)
            target = self._path(path)
            if isinstance(target, ConnectorPath):
                return connector_api.head(request, target)
            if target.collection is None:
                selectors.owner_team(actor, target)
                return HttpResponse(headers={"X-Data-Type": "directory"})
            found = selectors.object_get(actor, target)
        except ApiError as error:
            # The documented error body (a server sends none for HEAD), and the message
            # where Algorithmia's client looks for it.
            response = JsonResponse(error.body(), status=error.status_code)
            response["X-Error-Message"] = _header_safe(error.message)
            return response
        if not found.is_file:
            return HttpResponse(headers={"X-Data-Type": "directory"})
        response = HttpResponse(
            content_type="application/octet-stream",
            headers={
                "X-Data-Type": "file",
                "Accept-Ranges": "bytes",
                "Last-Modified": format_datetime(found.entry.modified_at, usegmt=True),
            },
        )
        response["Content-Length"] = str(found.entry.size)
        return response

    @extend_schema(
        tags=["data"],
        summary="Upload a file (the body, streamed)",
        parameters=[_PATH_PARAMETER],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: ResultOutput},
    )
    def put(self, request, path: str = ""):
        actor = DataActor.from_request(request)
        target = self._path(path)
        if isinstance(target, ConnectorPath):
            source, declared = _body_source(request)
            return connector_api.put(request, target, source=source, declared_size=declared)
        if target.collection is None:
            raise InputError("a file lives inside a collection: data://OWNER/COLLECTION/FILE")
        source, declared = _body_source(request)
        services.file_write(actor=actor, path=target, source=source, declared_size=declared)
        return Response({"result": target.uri()})

    @extend_schema(
        tags=["data"],
        summary="Create a collection (under an owner) or a directory",
        parameters=[_PATH_PARAMETER],
        request=CreateInput,
        responses={200: ResultOutput},
    )
    def post(self, request, path: str = ""):
        actor = DataActor.from_request(request)
        target = self._path(path)
        body = request.data if isinstance(request.data, dict) else {}
        if isinstance(target, ConnectorPath):
            return connector_api.post(request, target, body)
        name = body.get("name")
        if not isinstance(name, str):
            raise InputError('send {"name": "..."} (and optionally "acl")')
        if target.collection is None:
            services.collection_create(actor=actor, path=target, name=name, acl=body.get("acl"))
        else:
            if body.get("acl") is not None:
                raise InputError(
                    f"permissions belong to collections: set them on "
                    f"data://{target.owner}/{target.collection}"
                )
            services.directory_create(actor=actor, path=target, name=name)
        return Response({"result": f"{target.uri()}/{name}"})

    @extend_schema(
        tags=["data"],
        summary="Set a collection's read permission",
        parameters=[_PATH_PARAMETER],
        request=AclInput,
        responses={200: AclOutput},
    )
    def patch(self, request, path: str = ""):
        actor = DataActor.from_request(request)
        target = self._path(path)
        if isinstance(target, ConnectorPath):
            return connector_api.patch(request, target)
        if target.collection is None:
            raise InputError("permissions belong to collections: data://OWNER/COLLECTION")
        body = request.data if isinstance(request.data, dict) else {}
        if "acl" not in body:
            raise InputError('send {"acl": {"read": [...]}}')
        collection = services.collection_set_acl(actor=actor, path=target, acl=body["acl"])
        return Response({"acl": {"read": ACL_STRINGS[collection.read_acl]}})

    @extend_schema(
        tags=["data"],
        summary="Delete a file, or a directory or collection (force=true when not empty)",
        parameters=[_PATH_PARAMETER, OpenApiParameter("force", OpenApiTypes.BOOL)],
        responses={200: DeletedOutput},
    )
    def delete(self, request, path: str = ""):
        actor = DataActor.from_request(request)
        target = self._path(path)
        force = _flag(request, "force")
        if isinstance(target, ConnectorPath):
            return connector_api.delete(request, target, force=force)
        if target.collection is None:
            raise InputError("name a collection, directory or file to delete")
        deleted = services.object_delete(actor=actor, path=target, force=force)
        return Response({"result": {"deleted": deleted}})


@extend_schema(exclude=True)  # the same operations as /v1/data/{path} (docs/api.md)
class ConnectorApi(DataApi):
    """`/v1/connector/{connector}/...`: `data` is hosted data (`/v1/connector/data/OWNER/...`),
    `s3` a connected bucket (`/v1/connector/s3/CONNECTOR/path`)."""

    def _path(self, path: str):
        connector = self.kwargs.get("connector")
        if connector == "data":
            return parse_data_path(path)
        if connector == "s3":
            return parse_connector_path(f"s3://{path}")
        raise NotFoundError(
            f"no such data connector {connector!r}: use data (hosted data) or s3 (a bucket "
            "your namespace connected)"
        )

    def get(self, request, connector: str, path: str = ""):
        return super().get(request, path)

    def head(self, request, connector: str, path: str = ""):
        return super().head(request, path)

    def put(self, request, connector: str, path: str = ""):
        return super().put(request, path)

    def post(self, request, connector: str, path: str = ""):
        return super().post(request, path)

    def patch(self, request, connector: str, path: str = ""):
        return super().patch(request, path)

    def delete(self, request, connector: str, path: str = ""):
        return super().delete(request, path)
