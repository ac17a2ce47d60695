"""The catalogue API: models, builds (upload, status, logs), versions (publish, list), and
namespace webhooks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts import selectors as account_selectors
from marketplace.accounts.models import ApiKey
from marketplace.accounts.principals import Principal
from marketplace.accounts.scopes import CATALOG_WRITE
from marketplace.core.api import JSONParser, Pagination
from marketplace.core.errors import (
    AuthenticationError,
    InputError,
    NotFoundError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)

from . import selectors, services
from .models import Build, Model, Version, Webhook
from .search import CatalogQuery, search, suggest
from .search.queries import suggestion_text
from .snippets import context_for_version, render_all
from .versions import resolve_version


def _endpoint(model: Model, version: str | None = None) -> str:
    base = f"{settings.PUBLIC_URL}/v1/algo/{model.owner.slug}/{model.slug}"
    return f"{base}/{version}" if version else base


# -- serializers ---------------------------------------------------------------------------------


class VersionOutput(serializers.Serializer):
    version = serializers.CharField(source="number")
    visibility = serializers.CharField()
    release_notes = serializers.CharField()
    royalty_per_call = serializers.DecimalField(max_digits=14, decimal_places=6)
    build = serializers.UUIDField(source="build_id")
    package_hash = serializers.CharField(source="build.package_hash")
    runtime = serializers.CharField(source="build.runtime")
    sample_input = serializers.JSONField(source="build.sample_input")
    sample_output = serializers.JSONField(source="build.sample_output")
    published_at = serializers.DateTimeField()
    endpoint = serializers.SerializerMethodField()

    def get_endpoint(self, version: Version) -> str:
        return _endpoint(version.model, version.number)


class ModelOutput(serializers.Serializer):
    owner = serializers.CharField(source="owner.slug")
    name = serializers.CharField(source="slug")
    title = serializers.CharField()
    tagline = serializers.CharField()
    readme = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    task = serializers.CharField()
    framework = serializers.CharField()
    license = serializers.CharField()
    runtime = serializers.CharField()
    visibility = serializers.CharField()
    network = serializers.BooleanField()
    stars = serializers.IntegerField()
    warm_processes = serializers.IntegerField()
    anonymous_tries = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    latest_version = serializers.SerializerMethodField()
    endpoint = serializers.SerializerMethodField()

    def get_latest_version(self, model: Model) -> str | None:
        known = self.context.get("latest_versions")
        if known is not None:
            return known.get(model.pk)
        principal = self.context.get("principal")
        version = selectors.versions_visible(principal, model).first()
        return version.number if version else None

    def get_endpoint(self, model: Model) -> str:
        return _endpoint(model)


class FacetValueOutput(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField()


class ModelListOutput(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="How many models match: exact up to 10,000, else 10,000 and "
        "count_is_lower_bound true"
    )
    count_is_lower_bound = serializers.BooleanField(
        help_text="True when more models match than were counted: `count` is then a lower "
        "bound, `pages` ends there, and each facet counts a sample of the matches, not all"
    )
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    next = serializers.IntegerField(allow_null=True, help_text="The next page's number")
    previous = serializers.IntegerField(allow_null=True)
    results = ModelOutput(many=True)
    facets = serializers.DictField(
        child=FacetValueOutput(many=True), help_text="Per facet, its values and their counts"
    )
    engine = serializers.CharField(help_text="The search engine that answered")
    corrected_query = serializers.CharField(
        allow_null=True,
        help_text="Set when the words as typed matched nothing (or far fewer models): the "
        "results are this corrected query's; ask again with verbatim=1 for the words as typed",
    )


class BuildOutput(serializers.Serializer):
    id = serializers.UUIDField()
    model = serializers.CharField(source="model.full_name")
    status = serializers.CharField()
    package_hash = serializers.CharField()
    runtime = serializers.CharField()
    environment_key = serializers.CharField()
    manifest = serializers.JSONField()
    sample_input = serializers.JSONField()
    sample_output = serializers.JSONField()
    sample_output_content_type = serializers.CharField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    duration = serializers.FloatField()
    version = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    logs_url = serializers.SerializerMethodField()

    def get_version(self, build: Build) -> str | None:
        version = build.versions.first()
        return version.number if version else None

    def get_url(self, build: Build) -> str:
        return f"{settings.PUBLIC_URL}/v1/models/{build.model.full_name}/builds/{build.pk}"

    def get_logs_url(self, build: Build) -> str:
        return self.get_url(build) + "/logs"


class BuildEnvelope(serializers.Serializer):
    build = BuildOutput()


class UploadInput(serializers.Serializer):
    package = serializers.FileField(
        help_text="A .zip or .tar.gz of the model folder, or an .onnx / .skops file"
    )
    name = serializers.CharField(required=False, max_length=64)
    title = serializers.CharField(required=False, max_length=100)
    tagline = serializers.CharField(required=False, max_length=200)
    license = serializers.CharField(required=False, max_length=64)
    task = serializers.CharField(required=False, max_length=64)
    framework = serializers.CharField(required=False, max_length=64)
    tags = serializers.CharField(required=False, help_text="comma-separated")


class ModelSettingsInput(serializers.Serializer):
    warm_processes = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="processes of the newest version kept warm on every runner",
    )
    anonymous_tries = serializers.BooleanField(
        required=False,
        help_text="visitors without an account may try the model, a few calls a day per "
        "address, billed to no one (public models only)",
    )


class PublishInput(serializers.Serializer):
    bump = serializers.ChoiceField(choices=["major", "minor", "patch"])
    visibility = serializers.ChoiceField(choices=["public", "private"])
    release_notes = serializers.CharField(required=False, allow_blank=True, default="")
    build = serializers.UUIDField(required=False, allow_null=True, default=None)


class LogOutput(serializers.Serializer):
    text = serializers.CharField()
    offset = serializers.IntegerField()
    complete = serializers.BooleanField()
    status = serializers.CharField()


class WebhookOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WebhookCreateInput(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=serializers.CharField(), min_length=1)


# -- views ---------------------------------------------------------------------------------------


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ModelListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses=ModelListOutput,
        summary="Search the catalogue",
        tags=["catalog"],
        parameters=[
            OpenApiParameter("search", str, description="websearch syntax: quotes, -word, or"),
            OpenApiParameter("tags", str, description="comma-separated; all must match"),
            OpenApiParameter("task", str),
            OpenApiParameter("framework", str),
            OpenApiParameter("license", str),
            OpenApiParameter("owner", str),
            OpenApiParameter("sort", str, enum=["relevance", "popular", "recent"]),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
            OpenApiParameter(
                "verbatim", bool, description="1: no spelling correction, the words as typed"
            ),
        ],
    )
    def get(self, request):
        principal = Principal.from_request(request)
        query = CatalogQuery.from_params(request.query_params)
        found = search(principal, query)
        pages = max(1, -(-found.count // query.page_size))
        return Response(
            {
                "count": found.count,
                "count_is_lower_bound": found.count_is_lower_bound,
                "page": query.page,
                "pages": pages,
                "next": query.page + 1 if query.page < pages else None,
                "previous": query.page - 1 if query.page > 1 else None,
                "results": ModelOutput(
                    found.models,
                    many=True,
                    context={
                        "principal": principal,
                        "latest_versions": selectors.latest_version_numbers(
                            principal, found.models
                        ),
                    },
                ).data,
                "facets": found.facets,
                "engine": found.engine,
                # The words as typed matched nothing (or far less): the results are those of
                # this corrected query; `verbatim=1` asks for the words as typed.
                "corrected_query": found.corrected_query or None,
            }
        )


class SuggestionApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("q", str)],
        responses={200: OpenApiTypes.OBJECT},
        summary="Autocomplete model names",
        tags=["catalog"],
    )
    def get(self, request):
        principal = Principal.from_request(request)
        text = suggestion_text(request.query_params.get("q"))
        return Response(
            {
                "suggestions": [
                    {"owner": m.owner.slug, "name": m.slug, "title": m.title, "url": m.url}
                    for m in suggest(principal, text)
                ]
            }
        )


class ModelUploadApi(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={"multipart/form-data": UploadInput},
        responses={202: BuildEnvelope, 200: BuildEnvelope},
        summary="Upload a model package: creates (or finds) its build",
        tags=["catalog"],
    )
    def post(self, request, owner):
        principal = Principal.from_request(request)
        principal.require_scope(CATALOG_WRITE, "publish models")
        team = selectors.owner_get(owner)
        principal.require_acts_for(team)
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.PACKAGE_MAX_UPLOAD_BYTES:
            raise RequestTooLargeError(
                f"the package is {declared:,} bytes; the largest accepted is "
                f"{settings.PACKAGE_MAX_UPLOAD_BYTES:,} bytes"
            )
        if "package" not in request.FILES:
            if request.content_type.startswith("application/json"):
                if not isinstance(request.data, dict) or "http" not in request.data:
                    raise UnsupportedMediaTypeError(
                        "Upload the package as multipart/form-data with the file in the "
                        "'package' field, or send JSON metadata naming an 'http' inference "
                        "server"
                    )
                build, created = services.remote_build_create(
                    actor=request.user, owner=team, spec=dict(request.data)
                )
                body = {"build": BuildOutput(build).data}
                return Response(body, status=status.HTTP_202_ACCEPTED if created else 200)
            raise InputError(
                "package: attach the model package (a .zip or .tar.gz of the "
                "folder, or an .onnx / .skops file)",
                fields={"package": ["required"]},
            )
        data = _valid(UploadInput, request.data)
        upload = data.pop("package")
        if "tags" in data:
            data["tags"] = [t.strip() for t in data["tags"].split(",") if t.strip()]
        with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
            source = Path(tmp) / "package"
            with source.open("wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            build, created = services.build_create(
                actor=request.user,
                owner=team,
                source=source,
                filename=upload.name,
                overrides=data,
            )
        body = {"build": BuildOutput(build).data}
        return Response(body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class ModelDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=ModelOutput, summary="A model", tags=["catalog"])
    def get(self, request, owner, name):
        principal = Principal.from_request(request)
        model = selectors.model_get(principal, owner, name)
        return Response(ModelOutput(model, context={"principal": principal}).data)

    @extend_schema(
        request=ModelSettingsInput,
        responses=ModelOutput,
        summary="Change a model's settings (owners and admins)",
        tags=["catalog"],
    )
    def patch(self, request, owner, name):
        principal = Principal.from_request(request)
        principal.require_scope(CATALOG_WRITE, "manage models")
        model = selectors.model_get(principal, owner, name)
        principal.require_acts_for(model.owner)
        data = _valid(ModelSettingsInput, request.data)
        if "warm_processes" in data:
            model = services.model_set_warm_processes(
                actor=request.user, model=model, count=data["warm_processes"]
            )
        if "anonymous_tries" in data:
            model = services.model_set_anonymous_tries(
                actor=request.user, model=model, allowed=data["anonymous_tries"]
            )
        return Response(ModelOutput(model, context={"principal": principal}).data)

    @extend_schema(
        responses={204: None},
        summary="Delete a model that has never been called (owners and admins)",
        tags=["catalog"],
    )
    def delete(self, request, owner, name):
        if not request.user.is_authenticated:
            raise AuthenticationError()
        principal = Principal.from_request(request)
        principal.require_scope(CATALOG_WRITE, "manage models")
        model = selectors.model_get(principal, owner, name)
        principal.require_acts_for(model.owner)
        services.model_delete(actor=request.user, model=model)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionListApi(APIView):
    # Set here for the schema too: drf-spectacular documents the page envelope.
    pagination_class = Pagination

    permission_classes = [AllowAny]

    @extend_schema(
        responses=VersionOutput(many=True), summary="Versions of a model", tags=["catalog"]
    )
    def get(self, request, owner, name):
        principal = Principal.from_request(request)
        model = selectors.model_get(principal, owner, name)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.versions_visible(principal, model), request, self
        )
        return paginator.get_paginated_response(VersionOutput(page, many=True).data)

    @extend_schema(
        request=PublishInput,
        responses={201: VersionOutput},
        summary="Publish the newest (or a given) successful build",
        tags=["catalog"],
    )
    def post(self, request, owner, name):
        principal = Principal.from_request(request)
        principal.require_scope(CATALOG_WRITE, "publish models")
        model = selectors.model_get(principal, owner, name)
        principal.require_acts_for(model.owner)
        data = _valid(PublishInput, request.data)
        build = (
            selectors.build_get(principal, model, data.pop("build")) if data.get("build") else None
        )
        data.pop("build", None)
        version = services.version_publish(actor=request.user, model=model, build=build, **data)
        return Response(VersionOutput(version).data, status=status.HTTP_201_CREATED)


class VersionDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses=VersionOutput, summary="One version (any version form)", tags=["catalog"]
    )
    def get(self, request, owner, name, version):
        principal = Principal.from_request(request)
        model = selectors.model_get(principal, owner, name)
        target = resolve_version(model, version, is_member=principal.is_member(model.owner))
        if target.version is None:
            raise NotFoundError(
                f"{model.full_name} build {target.build.short_hash} is not published"
            )
        return Response(VersionOutput(target.version).data)


def newest_key_prefix(user) -> str | None:
    """The prefix of the caller's newest usable key, to name in snippets (never a secret)."""
    if not getattr(user, "is_authenticated", False):
        return None

    key = (
        ApiKey.objects.filter(created_by=user, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .order_by("-created_at")
        .first()
    )
    return key.prefix if key else None


class SnippetListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("version", str, description="any version form")],
        responses={200: OpenApiTypes.OBJECT},
        summary="Ready-to-run code calling the model, in every client language",
        tags=["catalog"],
    )
    def get(self, request, owner, name):
        principal = Principal.from_request(request)
        model = selectors.model_get(principal, owner, name)
        target = resolve_version(
            model, request.query_params.get("version"), is_member=principal.is_member(model.owner)
        )
        if target.version is None:
            raise NotFoundError(
                f"{model.full_name} build {target.build.short_hash} is not published"
            )
        context = context_for_version(target.version, key_prefix=newest_key_prefix(request.user))
        return Response(
            {
                "model": model.full_name,
                "version": target.version.number,
                "endpoint": context.endpoint,
                "snippets": [snippet.as_dict() for snippet in render_all(context)],
            }
        )


class BuildListApi(APIView):
    # Set here for the schema too: drf-spectacular documents the page envelope.
    pagination_class = Pagination

    @extend_schema(
        responses=BuildOutput(many=True), summary="Builds of a model (owners)", tags=["catalog"]
    )
    def get(self, request, owner, name):
        principal = Principal.from_request(request)
        model = selectors.model_get(principal, owner, name)
        if not principal.is_member(model.owner):
            raise NotFoundError(f"No model named {owner}/{name}")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.builds_of(model), request, self)
        return paginator.get_paginated_response(BuildOutput(page, many=True).data)


class BuildDetailApi(APIView):
    @extend_schema(responses=BuildOutput, summary="A build (owners)", tags=["catalog"])
    def get(self, request, owner, name, build_id):
        principal = Principal.from_request(request)
        model = selectors.model_get(principal, owner, name)
        return Response(BuildOutput(selectors.build_get(principal, model, build_id)).data)


class BuildLogApi(APIView):
    @extend_schema(
        responses=LogOutput,
        summary="A build's log from an offset, to follow it live",
        parameters=[OpenApiParameter("offset", int)],
        tags=["catalog"],
    )
    def get(self, request, owner, name, build_id):
        principal = Principal.from_request(request)
        model = selectors.model_get(principal, owner, name)
        build = selectors.build_get(principal, model, build_id)
        try:
            offset = max(0, int(request.query_params.get("offset", 0)))
        except ValueError:
            raise InputError("offset: must be a whole number") from None
        text = build.log[offset:]
        return Response(
            {
                "text": text,
                "offset": offset + len(text),
                "complete": build.is_finished,
                "status": build.status,
            }
        )


class WebhookListApi(APIView):
    @extend_schema(
        responses=WebhookOutput(many=True), summary="A namespace's webhooks", tags=["catalog"]
    )
    def get(self, request, team):
        team_obj = account_selectors.team_for_principal(Principal.from_request(request), team)
        hooks = Webhook.objects.filter(owner=team_obj).order_by("created_at")
        return Response(WebhookOutput(hooks, many=True).data)

    @extend_schema(
        request=WebhookCreateInput,
        responses={201: WebhookOutput},
        summary="Subscribe a URL to build.succeeded, build.failed, version.published",
        tags=["catalog"],
    )
    def post(self, request, team):
        principal = Principal.from_request(request)
        principal.require_scope(CATALOG_WRITE, "manage webhooks")
        team_obj = account_selectors.team_for_member(request.user, team)
        principal.require_acts_for(team_obj)
        hook = services.webhook_create(
            actor=request.user, owner=team_obj, **_valid(WebhookCreateInput, request.data)
        )
        body = WebhookOutput(hook).data | {"secret": hook.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    @extend_schema(responses={204: None}, summary="Remove a webhook", tags=["catalog"])
    def delete(self, request, team, webhook_id):
        principal = Principal.from_request(request)
        principal.require_scope(CATALOG_WRITE, "manage webhooks")
        team_obj = account_selectors.team_for_member(request.user, team)
        hook = Webhook.objects.filter(owner=team_obj, pk=webhook_id).first()
        if hook is None:
            raise NotFoundError("No such webhook")
        services.webhook_delete(actor=request.user, webhook=hook)
        return Response(status=status.HTTP_204_NO_CONTENT)
