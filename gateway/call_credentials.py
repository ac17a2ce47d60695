"""The credential a model acts with while it runs for a caller, as Algorithmia's algorithms
did: it reads what its caller may read, writes where its caller may write, and calls other
models, billed to that caller under the same project.

The gateway issues one per call it runs (`call_credential_issue`); the runner hands it to
the model process's door to the platform's API (execution/platform_api.py), which puts it
on the model's requests: the model itself never holds it. It is a signed token naming the
invocation and its deadline, and it is honoured only while that invocation is running and
before that deadline: it dies when the call ends, however it was leaked.

A request that carries one (`CallCredentialAuthentication`) acts as the call's caller (its
user, and its key with the key's scopes), on the model API paths only (calls and data), with
the running model's namespace as `running_model_owner_id` for data that the owner shares
with its models. A call made with it (`nested_call`) is recorded with its parent and depth,
billed under the parent's project, its timeout capped by what is left of the parent's, and
refused beyond NESTED_CALLS_MAX_DEPTH (508), so a chain of models that call each other
cannot loop forever."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from execution.platform_api import ALLOWED_PREFIXES
from marketplace.accounts.authentication import key_from_header
from marketplace.core.errors import (
    ApiError,
    AuthenticationError,
    AuthorizationError,
    GatewayTimeoutError,
    InputError,
)

from .calls import CallInput
from .models import Invocation, InvocationStatus

PREFIX = "mpcall_"
_SALT = "gateway.call-credential"
# A nested call needs at least this much of its parent's time left to be worth starting.
_MIN_SECONDS_LEFT = 0.5


class LoopDetectedError(ApiError):
    status_code = 508
    error_type = "LoopDetected"


@dataclass(frozen=True)
class CallContext:
    """The running call a request comes from."""

    invocation_id: str
    depth: int
    deadline: float  # epoch seconds
    project: str
    model_name: str
    model_slug: str
    model_owner_id: int

    @property
    def seconds_left(self) -> float:
        return self.deadline - time.time()


def call_credential_issue(invocation: Invocation) -> str:
    """The credential of one running call, valid until its timeout."""
    started = invocation.started_at or timezone.now()
    deadline = started + timedelta(seconds=invocation.timeout_seconds)
    payload = {"i": str(invocation.pk), "x": round(deadline.timestamp(), 3)}
    return PREFIX + signing.dumps(payload, salt=_SALT, compress=False)


def call_credential_check(token: str, path: str):
    """(user, key, CallContext) for a live call's credential used on `path`, or
    AuthenticationError saying why it is dead."""
    try:
        payload = signing.loads(token.removeprefix(PREFIX), salt=_SALT)
        invocation_id, deadline = str(payload["i"]), float(payload["x"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise AuthenticationError("Invalid call credential") from None
    if time.time() >= deadline:
        raise AuthenticationError("This call credential expired with its call's timeout")
    invocation = (
        Invocation.objects.select_related("caller_user", "api_key", "model__owner")
        .filter(pk=invocation_id, status=InvocationStatus.RUNNING)
        .first()
    )
    if invocation is None:
        raise AuthenticationError("This call credential died when its call ended")
    if not path.startswith(ALLOWED_PREFIXES):
        raise AuthorizationError(
            "A model's credential may only call models and use data ("
            + ", ".join(ALLOWED_PREFIXES)
            + ")"
        )
    user, key = invocation.caller_user, invocation.api_key
    if user is None or not user.is_active:
        raise AuthenticationError("The account this call ran for is disabled")
    if key is not None and (key.is_revoked or key.is_expired):
        raise AuthenticationError("The API key this call was made with is no longer valid")
    context = CallContext(
        invocation_id=invocation_id,
        depth=invocation.depth,
        deadline=deadline,
        project=invocation.project,
        model_name=invocation.model.full_name,
        model_slug=invocation.model.slug,
        model_owner_id=invocation.model.owner_id,
    )
    return user, key, context


class CallCredentialScheme(OpenApiAuthenticationExtension):
    target_class = "gateway.call_credentials.CallCredentialAuthentication"
    name = "callCredential"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Only inside a running model: the call's own credential "
            "(`mpcall_...`), lent through the sandbox's door to the API",
        }


class CallCredentialAuthentication(BaseAuthentication):
    """Before the API key check: a request with a call credential acts as that call's
    caller (see the module's docstring). Anything else is left to the other
    authenticators."""

    def authenticate(self, request):
        raw = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
        if not raw or not raw.startswith(PREFIX):
            return None
        user, key, context = call_credential_check(raw, request.path_info)
        request._request.call_context = context
        # What data/permissions.DataActor reads: the running model's namespace, and its
        # own collection (data://.algo/...).
        request._request.running_model_owner_id = context.model_owner_id
        request._request.running_model_slug = context.model_slug
        return user, key

    def authenticate_header(self, request) -> str:
        return 'Simple realm="api"'


def call_context_of(request) -> CallContext | None:
    return getattr(request, "call_context", None)


def nested_call(call: CallInput, parent: CallContext) -> CallInput:
    """A call a running model makes: refused past the depth limit (508) or when its parent
    has no time left (504), and asynchronous calls are refused (they would outlive the
    parent); its timeout is capped by what is left of the parent's."""
    depth = parent.depth + 1
    limit = settings.NESTED_CALLS_MAX_DEPTH
    if depth > limit:
        raise LoopDetectedError(
            f"{parent.model_name} called another model {depth} calls deep; a chain of models "
            f"may nest at most {limit} calls (a loop?)"
        )
    if call.output == "void":
        raise InputError("a running model cannot start an asynchronous call (output=void)")
    left = parent.seconds_left
    if left < _MIN_SECONDS_LEFT:
        raise GatewayTimeoutError(
            f"the calling model ({parent.model_name}) has no time left for another call"
        )
    return dataclasses.replace(call, timeout=min(call.timeout, left), webhook="")
