"""Algorithmia's algorithms API, `/v1/algorithms/...`, so the management calls of its
clients (`algo.info()`, `.versions()`, `.get_builds()`, `.get_build()`, `.get_build_logs()`,
`.exists()`, `.create()`, `.publish()`, `.compile()`) and CI scripts written against them
run unchanged. The same models, builds and versions as `/v1/models/...`, read through the
same selectors and changed through the same services, with the same keys, scopes and
privacy (a model the caller may not see is a 404 on every route); only the shapes are
Algorithmia's (github.com/algorithmiaio/api-docs: algorithms, algorithm versions, algorithm
builds). Errors keep the platform's shape, whose `error.message` is what the clients read.

How the concepts meet:

- an algorithm is a model: `name` its name, `id` its id, `details` its title (`label`),
  tagline and README (`summary`);
- a "compiled version" is a successful build: `version_info.git_hash` is its package hash
  (what a build-hash version of a call names), `semantic_version` its version once
  published; `compilation.output` its build log (members only);
- `compile` builds the newest uploaded package (the platform's code arrives as a package
  upload, `POST /v1/models/{owner}`, not a git push), and publishing takes the newest build,
  as Algorithmia published only the most recent compiled version.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
import uuid

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.principals import Principal
from marketplace.accounts.scopes import CATALOG_WRITE
from marketplace.core.errors import InputError, NotFoundError

from . import access, selectors, services
from .models import Build, BuildStatus, Model, Version, Visibility

# How long `compile` waits for the build before answering with it still in progress (202).
COMPILE_WAIT_SECONDS = 60
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 100

_BUILD_STATUS = {
    BuildStatus.QUEUED: "in-progress",
    BuildStatus.BUILDING: "in-progress",
    BuildStatus.SUCCEEDED: "succeeded",
    BuildStatus.FAILED: "failed",
}
_VERSION_TYPES = {"major": "major", "minor": "minor", "revision": "patch", "patch": "patch"}
# The code of every model lives on the platform (its uploaded packages): Algorithmia's
# "internal" source-code manager.
_INTERNAL_SOURCE = {
    "scm": {"id": "internal", "provider": "internal", "default": True, "enabled": True}
}
_datetime = serializers.DateTimeField()


def _algorithm(principal, owner: str, name: str) -> Model:
    """The model, or the 404 whose message the Algorithmia client's `exists()` looks for."""
    try:
        return selectors.model_get(principal, owner, name)
    except NotFoundError:
        raise NotFoundError(f"No such algorithm: {owner}/{name}") from None


def _when(value) -> str | None:
    return _datetime.to_representation(value) if value is not None else None


def _text(value) -> str | None:
    """A sample input or output as Algorithmia's text field: a string as it is, any other
    JSON value as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _link(*parts: str, query: dict | None = None) -> str:
    path = "/".join(urllib.parse.quote(part, safe="") for part in parts)
    tail = f"?{urllib.parse.urlencode(query)}" if query else ""
    return f"{settings.PUBLIC_URL}/v1/algorithms/{path}{tail}"


# -- shapes -------------------------------------------------------------------------------------


def _settings(*, visibility: str, runtime: str, hardware_class: str, license_: str, network: bool):
    found = {
        "algorithm_callability": visibility,
        "source_visibility": "closed",  # a model's package is never shown to its callers
        "language": runtime or None,
        "environment": hardware_class,
        "license": license_,
        "network_access": "full" if network else "isolated",
        "pipeline_enabled": False,  # models do not call models here (yet)
    }
    return {key: value for key, value in found.items() if value is not None}


def algorithm_object(model: Model, newest: Version | None = None) -> dict:
    """The algorithm object; with `newest` (the newest version the caller may see), its
    `version_info`."""
    body = {
        "id": str(model.pk),
        "name": model.slug,
        "details": {"label": model.title, "tagline": model.tagline, "summary": model.readme},
        "settings": _settings(
            visibility=model.visibility,
            runtime=model.runtime,
            hardware_class=model.hardware_class,
            license_=model.license,
            network=model.network,
        ),
        "source": _INTERNAL_SOURCE,
        "resource_type": "algorithm",
    }
    if newest is not None:
        body["version_info"] = _version_info(newest.build, newest)
    return body


def _version_info(build: Build, version: Version | None) -> dict:
    info = {"git_hash": build.package_hash}
    if version is not None:
        info["semantic_version"] = version.number
        info["release_notes"] = version.release_notes
    info["sample_input"] = _text(build.sample_input)
    info["sample_output"] = _text(build.sample_output)
    return {key: value for key, value in info.items() if value is not None}


def build_object(build: Build) -> dict:
    body = {
        "build_id": str(build.pk),
        "commit_sha": build.package_hash,
        "status": _BUILD_STATUS[build.status],
        "started_at": _when(build.started_at or build.created_at),
        "finished_at": _when(build.finished_at),
        "resource_type": "algorithm_build",
    }
    version = build.versions.first()
    if version is not None:
        body["version_info"] = {"semantic_version": version.number}
    return body


def version_object(build: Build, *, is_member: bool) -> dict:
    """A compiled version: what its own package says about it, its build, and (for the
    owner's members) its build log as `compilation.output`."""
    model = build.model
    version = build.versions.first()
    manifest = build.manifest or {}
    compilation = {"successful": build.status == BuildStatus.SUCCEEDED}
    if is_member:
        compilation["output"] = build.log
    return {
        "id": str(model.pk),
        "name": model.slug,
        "details": {
            "label": manifest.get("title") or model.title,
            "tagline": manifest.get("tagline", ""),
            "summary": manifest.get("readme", ""),
        },
        "settings": _settings(
            visibility=version.visibility if version is not None else Visibility.PRIVATE,
            runtime=build.runtime,
            hardware_class=model.hardware_class,
            license_=manifest.get("license", model.license),
            network=bool(manifest.get("network", False)),
        ),
        "source": _INTERNAL_SOURCE,
        "version_info": _version_info(build, version),
        "build": build_object(build),
        "compilation": compilation,
        "self_link": _link(model.owner.slug, model.slug, "versions", build.package_hash),
        "resource_type": "algorithm",
    }


# -- pages --------------------------------------------------------------------------------------


def _page(request, items, path: tuple[str, ...]) -> tuple[list, dict]:
    """One page of `items` by Algorithmia's `limit` and `marker`; the marker is opaque (the
    offset of the next page)."""
    raw_limit = request.query_params.get("limit") or PAGE_LIMIT_DEFAULT
    try:
        limit = int(raw_limit)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise InputError(f"limit: between 1 and {PAGE_LIMIT_MAX}")
    offset = _offset(request.query_params.get("marker"))
    rows = list(items[offset : offset + limit + 1])
    more = len(rows) > limit
    marker = _marker(offset + limit) if more else None
    query = {key: value for key, value in request.query_params.items() if key != "marker"}
    envelope = {
        "marker": marker,
        "next_link": _link(*path, query={**query, "marker": marker}) if more else None,
    }
    return rows[:limit], envelope


def _marker(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _offset(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        padded = marker + "=" * (-len(marker) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 10**6:
        raise InputError("marker: not one this API gave; use the marker of the previous page")
    return offset


def _flag(request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise InputError(f"{name}: true or false")


# -- bodies -------------------------------------------------------------------------------------


def _body(request) -> dict:
    """The JSON body as a dict of the groups Algorithmia sends (`details`, `settings`,
    `version_info`, ...). A form body holds only the groups' names: the Algorithmia Python
    client (2.0.5) sends `update()` so (requests form-encodes the dicts it is given, keeping
    their keys and losing their values), and nothing it meant can be read from it."""
    if not request.content_type.startswith("application/json") and request.data:
        raise InputError(
            "send the fields as JSON (Content-Type: application/json): a form body has only "
            f"the names of its groups ({', '.join(sorted(request.data))}), not their values"
        )
    data = request.data if request.content_type.startswith("application/json") else {}
    if not isinstance(data, dict):
        raise InputError("the body must be a JSON object")
    for group in ("details", "settings", "version_info"):
        if data.get(group) is not None and not isinstance(data[group], dict):
            raise InputError(f"{group}: must be an object", fields={group: ["invalid"]})
    return data


def _group(data: dict, name: str) -> dict:
    return data.get(name) or {}


def _string(group: dict, key: str, where: str) -> str | None:
    value = group.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}.{key}: must be a string", fields={f"{where}.{key}": ["invalid"]})
    return value


def _network(settings_: dict) -> bool | None:
    value = settings_.get("network_access")
    if value is None:
        return None
    if value not in ("full", "isolated"):
        raise InputError("settings.network_access: full or isolated")
    return value == "full"


def _refuse_changes_made_elsewhere(model: Model, settings_: dict) -> None:
    """Settings that are facts of a model's package or versions, not of the model: equal
    values are accepted (a script sends the whole object), a change is refused with where
    to make it."""
    network = _network(settings_)
    if network is not None and network != model.network:
        raise InputError(
            "settings.network_access: a model's network access is declared by its package "
            "(network = true|false in model.toml) and applies from the next build"
        )
    callability = settings_.get("algorithm_callability")
    if callability is not None and callability != model.visibility:
        raise InputError(
            "settings.algorithm_callability: who may call a model is set by publishing a "
            "version (POST .../versions with settings.algorithm_callability)"
        )
    environment = settings_.get("environment")
    if environment is not None and environment != model.hardware_class:
        raise InputError(
            f"settings.environment: this model runs on {model.hardware_class}; its hardware "
            "class is set by the platform"
        )


def _build(principal, model: Model, build_id: str) -> Build:
    """A build of the model by its id (members only: others get the 404 of a build that does
    not exist); a malformed id is one that does not exist."""
    try:
        uuid.UUID(build_id)
    except ValueError:
        raise NotFoundError(f"No build {build_id} of {model.full_name}") from None
    return selectors.build_get(principal, model, build_id)


def _writer(request, owner: str, name: str) -> tuple[Principal, Model]:
    principal = Principal.from_request(request)
    principal.require_scope(CATALOG_WRITE, "manage algorithms")
    model = _algorithm(principal, owner, name)
    principal.require_acts_for(model.owner)
    # The services check it too; checked first here, a refused caller hears 403 before any
    # complaint about the body.
    access.require_publish(request.user, model.owner)
    return principal, model


# -- views --------------------------------------------------------------------------------------

_OBJECT = {200: OpenApiTypes.OBJECT}
_PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description=f"1 to {PAGE_LIMIT_MAX} (default 50)"),
    OpenApiParameter("marker", str, description="the previous page's marker"),
]


class AlgorithmCreateApi(APIView):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT},
        summary="Create an algorithm: an empty, private model (Algorithmia)",
        tags=["algorithms"],
    )
    def post(self, request, owner):
        principal = Principal.from_request(request)
        principal.require_scope(CATALOG_WRITE, "create algorithms")
        team = selectors.owner_get(owner)
        principal.require_acts_for(team)
        data = _body(request)
        details, settings_ = _group(data, "details"), _group(data, "settings")
        model = services.model_create(
            actor=request.user,
            owner=team,
            name=data.get("name"),
            title=_string(details, "label", "details") or "",
            tagline=_string(details, "tagline", "details") or "",
            readme=_string(details, "summary", "details") or "",
            license=_string(settings_, "license", "settings") or "",
            network=bool(_network(settings_)),
        )
        return Response(algorithm_object(model), status=status.HTTP_201_CREATED)


class AlgorithmApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=_OBJECT, summary="An algorithm (Algorithmia)", tags=["algorithms"])
    def get(self, request, owner, name):
        principal = Principal.from_request(request)
        model = _algorithm(principal, owner, name)
        newest = selectors.versions_visible(principal, model).first()
        return Response(algorithm_object(model, newest))

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=_OBJECT,
        summary="Update an algorithm's details and license (Algorithmia)",
        tags=["algorithms"],
    )
    def put(self, request, owner, name):
        _principal, model = _writer(request, owner, name)
        data = _body(request)
        details, settings_ = _group(data, "details"), _group(data, "settings")
        _refuse_changes_made_elsewhere(model, settings_)
        model = services.model_update_details(
            actor=request.user,
            model=model,
            title=_string(details, "label", "details"),
            tagline=_string(details, "tagline", "details"),
            readme=_string(details, "summary", "details"),
            license=_string(settings_, "license", "settings"),
        )
        return Response(algorithm_object(model))

    @extend_schema(
        responses={204: None},
        summary="Delete an algorithm that has never been called (Algorithmia)",
        tags=["algorithms"],
    )
    def delete(self, request, owner, name):
        _principal, model = _writer(request, owner, name)
        services.model_delete(actor=request.user, model=model)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlgorithmVersionListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            *_PAGE_PARAMETERS,
            OpenApiParameter("published", bool, description="only (un)published versions"),
            OpenApiParameter("callable", bool, description="only public (true) or private"),
        ],
        responses=_OBJECT,
        summary="Compiled versions of an algorithm, newest first (Algorithmia)",
        tags=["algorithms"],
    )
    def get(self, request, owner, name):
        principal = Principal.from_request(request)
        model = _algorithm(principal, owner, name)
        builds = selectors.compiled_builds(
            principal,
            model,
            published=_flag(request, "published"),
            public=_flag(request, "callable"),
        )
        rows, envelope = _page(request, builds, (model.owner.slug, model.slug, "versions"))
        is_member = principal.is_member(model.owner)
        results = [version_object(build, is_member=is_member) for build in rows]
        return Response({**envelope, "results": results})

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=_OBJECT,
        summary="Publish the newest build as a version (Algorithmia)",
        tags=["algorithms"],
    )
    def post(self, request, owner, name):
        principal, model = _writer(request, owner, name)
        data = _body(request)
        info, settings_ = _group(data, "version_info"), _group(data, "settings")
        version_type = info.get("version_type")
        if version_type not in _VERSION_TYPES:
            raise InputError(
                "version_info.version_type: major, minor or revision",
                fields={"version_info.version_type": ["invalid"]},
            )
        callability = settings_.get("algorithm_callability")
        if callability is not None and callability not in Visibility.values:
            raise InputError("settings.algorithm_callability: public or private")
        version = services.version_publish_newest(
            actor=request.user,
            model=model,
            bump=_VERSION_TYPES[version_type],
            visibility=callability,
            release_notes=_string(info, "release_notes", "version_info") or "",
        )
        build = selectors.build_get(principal, model, version.build_id)
        return Response(version_object(build, is_member=True))


class AlgorithmVersionApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses=_OBJECT,
        summary="One compiled version by its hash (Algorithmia)",
        tags=["algorithms"],
    )
    def get(self, request, owner, name, git_hash):
        principal = Principal.from_request(request)
        model = _algorithm(principal, owner, name)
        build = selectors.compiled_build_by_hash(principal, model, git_hash)
        return Response(version_object(build, is_member=principal.is_member(model.owner)))


class AlgorithmBuildListApi(APIView):
    @extend_schema(
        parameters=_PAGE_PARAMETERS,
        responses=_OBJECT,
        summary="Builds of an algorithm, newest first (owners; Algorithmia)",
        tags=["algorithms"],
    )
    def get(self, request, owner, name):
        principal = Principal.from_request(request)
        model = _algorithm(principal, owner, name)
        if not principal.is_member(model.owner):
            raise NotFoundError(f"No such algorithm: {owner}/{name}")
        builds = selectors.builds_of(model).prefetch_related("versions")
        rows, envelope = _page(request, builds, (model.owner.slug, model.slug, "builds"))
        return Response({**envelope, "results": [build_object(build) for build in rows]})


class AlgorithmBuildApi(APIView):
    @extend_schema(responses=_OBJECT, summary="A build (owners; Algorithmia)", tags=["algorithms"])
    def get(self, request, owner, name, build_id):
        principal = Principal.from_request(request)
        model = _algorithm(principal, owner, name)
        return Response(build_object(_build(principal, model, build_id)))


class AlgorithmBuildLogApi(APIView):
    @extend_schema(
        responses=_OBJECT,
        summary="A build's log, so far while it runs (owners; Algorithmia)",
        tags=["algorithms"],
    )
    def get(self, request, owner, name, build_id):
        principal = Principal.from_request(request)
        model = _algorithm(principal, owner, name)
        return Response({"logs": _build(principal, model, build_id).log})


class AlgorithmCompileApi(APIView):
    @extend_schema(
        request=None,
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT},
        summary="Build the newest package; waits for it up to a minute (Algorithmia)",
        tags=["algorithms"],
    )
    def post(self, request, owner, name):
        _principal, model = _writer(request, owner, name)
        build = services.build_compile(actor=request.user, model=model)
        build = selectors.build_when_finished(build.pk, within=COMPILE_WAIT_SECONDS)
        body = version_object(build, is_member=True)
        if not build.is_finished:
            return Response(body, status=status.HTTP_202_ACCEPTED)
        return Response(body)
