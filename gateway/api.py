"""POST /v1/algo/{owner}/{name}[/{version}] and the invocation resource."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts import policies
from marketplace.accounts import selectors as account_selectors
from marketplace.accounts.api import require_account_management
from marketplace.accounts.principals import Principal
from marketplace.accounts.services import team_rotate_signing_secret
from marketplace.core.addresses import client_ip
from marketplace.core.errors import ApiError, AuthorizationError, RequestTooLargeError
from marketplace.core.webhooks import SIGNATURE_HEADER

from . import refusals, services
from .answers import Answer, call_answer
from .call_credentials import call_context_of, nested_call
from .calls import check_body_size, parse_call


class InvocationOutput(serializers.Serializer):
    request_id = serializers.UUIDField(source="id")
    status = serializers.CharField()
    model = serializers.CharField(source="model.full_name")
    version = serializers.CharField(source="version_label")
    caller = serializers.CharField(source="caller_team.slug")
    project = serializers.CharField()
    result = serializers.JSONField()
    content_type = serializers.CharField(source="result_content_type")
    error = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    duration = serializers.FloatField()
    model_duration = serializers.FloatField()
    cold_start = serializers.BooleanField()
    input_bytes = serializers.IntegerField()
    output_bytes = serializers.IntegerField()
    # A call a running model made: the call it was made from, and how deep (0: from outside).
    parent_request_id = serializers.UUIDField(source="parent_id", allow_null=True)
    depth = serializers.IntegerField()

    def get_error(self, invocation) -> dict | None:
        if not invocation.error:
            return None
        error = dict(invocation.error)
        if not self.context.get("is_member"):
            error.pop("stacktrace", None)
        return error


def http_response(answer: Answer) -> Response | HttpResponse:
    """An `Answer` as the DRF view returns it."""
    if answer.content is None:
        return Response(answer.data, status=answer.status, headers=answer.headers)
    response = HttpResponse(answer.content, status=answer.status, content_type=answer.content_type)
    for key, value in answer.headers.items():
        response[key] = value
    return response


class _RawBody(BaseParser):
    """The body is the model's input, read raw by parse_call; this parser only lets DRF's
    CSRF check of browser sessions look at request.POST without refusing the media type."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class InvokeApi(APIView):
    """Call a model. The body is the model's input: JSON, text or binary."""

    parser_classes = [_RawBody]
    # Calls without a key are refused in the view (401), except a visitor's anonymous try.
    permission_classes = [AllowAny]

    def initial(self, request, *args, **kwargs):
        # Read (and size-check) the body before authentication: the session's CSRF check
        # may touch request.POST, and the raw bytes must still be there for the model.
        try:
            check_body_size(request)
        except RequestTooLargeError as error:
            owner, name = kwargs.get("owner", ""), kwargs.get("name", "")
            refusals.refused_call_record(
                principal=refusals.principal_before_authentication(request),
                owner=owner,
                name=name,
                version=kwargs.get("version"),
                error=error,
                request_id=request.request_id,
            )
            raise
        request._request.body  # noqa: B018 - caches the body on the request
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={
            "application/json": OpenApiTypes.ANY,
            "text/plain": OpenApiTypes.STR,
            "application/octet-stream": OpenApiTypes.BINARY,
        },
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.ANY,
                description=(
                    '{"result", "metadata", "request_id"}, or {"error", "request_id"} when the '
                    "model raised; with output=raw the bare result, of any JSON type"
                ),
            ),
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="output=raw: a text result"
            ),
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="output=raw: a binary result"
            ),
            202: OpenApiResponse(
                OpenApiTypes.OBJECT, description='output=void: {"async": "void", "request_id"}'
            ),
        },
        parameters=[
            OpenApiParameter(
                "timeout",
                {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 3000},
                description="seconds, at most 3000 (default 300)",
            ),
            OpenApiParameter("stdout", bool, description="owners only; ignored for anyone else"),
            OpenApiParameter("output", str, enum=["raw", "void"]),
            OpenApiParameter(
                "webhook",
                {"type": "string", "pattern": "^https?://"},
                description="An http(s) URL, POSTed the finished invocation",
            ),
            OpenApiParameter(
                "keep_io",
                bool,
                description="keep this call's input and output for your team to read on its "
                "Calls page (true), or not (false), whatever the key's setting",
            ),
            OpenApiParameter("X-Project", str, OpenApiParameter.HEADER),
        ],
        summary="Call a model (Algorithmia v1 compatible)",
        tags=["invoke"],
    )
    def post(self, request, owner, name, version=None):
        request_id = request.request_id
        principal = Principal.from_request(request)
        anonymous = principal.user is None and principal.key is None
        # No key and no session: a visitor's anonymous try, where the model allows them
        # (services.invoke_anonymous), else the 401 of any call without a key.
        model = services.anonymous_try_model(owner, name) if anonymous else None
        try:
            call = parse_call(request)
        except ApiError as error:
            if not anonymous:
                refusals.refused_call_record(
                    principal=principal,
                    owner=owner,
                    name=name,
                    version=version,
                    error=error,
                    request_id=request_id,
                )
            raise
        if anonymous:
            outcome = services.invoke_anonymous(
                model=model,
                version=version,
                call=call,
                address=client_ip(request),
                request_id=request_id,
            )
        else:
            parent = call_context_of(request)  # a model calling another, as its caller
            if parent is not None:
                call = nested_call(call, parent)
            outcome = services.invoke(
                principal=principal,
                owner=owner,
                name=name,
                version=version,
                call=call,
                project=parent.project if parent else request.headers.get("X-Project", "").strip(),
                request_id=request_id,
                parent=parent,
            )
        return http_response(call_answer(outcome, call, request_id))


class InvocationApi(APIView):
    @extend_schema(
        responses=InvocationOutput,
        summary="An invocation (its caller and the model's owners)",
        tags=["invoke"],
    )
    def get(self, request, request_id):
        principal = Principal.from_request(request)
        invocation = services.invocation_get(principal, request_id)
        is_member = principal.is_member(invocation.model.owner)
        return Response(InvocationOutput(invocation, context={"is_member": is_member}).data)


class InvocationCancelApi(APIView):
    @extend_schema(
        request=None, responses=InvocationOutput, summary="Cancel an invocation", tags=["invoke"]
    )
    def post(self, request, request_id):
        principal = Principal.from_request(request)
        invocation = services.invocation_cancel(
            principal, services.invocation_get(principal, request_id)
        )
        is_member = principal.is_member(invocation.model.owner)
        return Response(InvocationOutput(invocation, context={"is_member": is_member}).data)


class SigningSecretOutput(serializers.Serializer):
    secret = serializers.CharField(source="signing_secret")
    header = serializers.SerializerMethodField()
    algorithm = serializers.SerializerMethodField()

    def get_header(self, team) -> str:
        return SIGNATURE_HEADER

    def get_algorithm(self, team) -> str:
        return "sha256=HMAC-SHA256(secret, body) in hex"


def _team_for_signing_secret(request, team: str):
    """The namespace whose secret the request may read or rotate. The secret lets its holder
    sign webhooks as the platform: it is handled as keys are managed, from a session or a
    personal full-access key of an owner or admin, never a narrow or team key."""
    team_obj = account_selectors.team_for_principal(Principal.from_request(request), team)
    require_account_management(request)
    if not policies.can_administer(request.user, team_obj):
        raise AuthorizationError("Only the namespace's owners and admins can read or rotate it")
    return team_obj


class SigningSecretApi(APIView):
    @extend_schema(
        responses=SigningSecretOutput,
        summary="The secret signing this namespace's webhooks: invocations and budget "
        "alerts (admins)",
        tags=["invoke"],
    )
    def get(self, request, team):
        return Response(SigningSecretOutput(_team_for_signing_secret(request, team)).data)


class SigningSecretRotateApi(APIView):
    @extend_schema(
        request=None,
        responses=SigningSecretOutput,
        summary="Replace this namespace's webhook signing secret with a new random one "
        "(admins); webhooks sent afterwards are signed with it",
        tags=["invoke"],
    )
    def post(self, request, team):
        team_obj = team_rotate_signing_secret(
            team=_team_for_signing_secret(request, team), actor=request.user
        )
        return Response(SigningSecretOutput(team_obj).data)
