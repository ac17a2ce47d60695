"""The invocation path: who may call what, limits, the invocation row, running it on an
execution backend, and recording the outcome exactly once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing import metering
from billing.budgets import selectors as budget_selectors
from catalog import selectors as catalog_selectors
from catalog.models import Model
from catalog.versions import Target, resolve_version
from execution.backends import (
    ExecutionRequest,
    ExecutionResult,
    ExecutionUnavailable,
    get_backend,
)
from marketplace.accounts.principals import Principal
from marketplace.accounts.scopes import allows_model
from marketplace.core import limits, metrics
from marketplace.core.errors import (
    ApiError,
    AuthorizationError,
    InputError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    UnavailableError,
)

from .calls import CallInput
from .models import Invocation, InvocationStatus

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "invocation_finished"


@dataclass
class Outcome:
    invocation: Invocation
    is_member: bool
    rate_headers: dict


def _input_schema_check(target: Target, call: CallInput) -> None:
    schema = target.build.manifest.get("input_schema")
    if not schema or call.content_type != "json":
        return
    from jsonschema.exceptions import best_match

    from catalog.packages import input_validator

    first = best_match(input_validator(schema).iter_errors(call.data))
    if first is not None:
        where = "$" + "".join(
            f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path
        )
        raise InputError(
            f"the input does not match the model's input schema at {where}: {first.message}"
        )


def caller_team(principal: Principal):
    if principal.key is not None:
        return principal.key.team
    from marketplace.accounts.services import personal_namespace_ensure

    return personal_namespace_ensure(user=principal.user)


def authorise_call(
    principal: Principal, owner: str, name: str, version: str | None
) -> tuple[Model, Target, bool]:
    model = catalog_selectors.model_get(principal, owner, name)
    is_member = principal.is_member(model.owner)
    target = resolve_version(model, version, is_member=is_member)
    if not allows_model(
        principal.scopes, owner=model.owner.slug, name=model.slug, version=target.label
    ):
        raise AuthorizationError(
            f"This API key may not call {model.full_name}/{target.label}: its scopes are "
            f"{', '.join(principal.scopes) or 'empty'}"
        )
    return model, target, is_member


def _rate_subjects(principal: Principal, team) -> list[tuple[str, str, int]]:
    subjects = [("team", f"team:{team.pk}", settings.TEAM_RATE_LIMIT_PER_MINUTE)]
    if principal.key is not None:
        subjects.insert(
            0, ("key", f"key:{principal.key.pk}", settings.RATE_LIMIT_PER_KEY_PER_MINUTE)
        )
    else:
        subjects.insert(
            0, ("user", f"user:{principal.user.pk}", settings.RATE_LIMIT_PER_KEY_PER_MINUTE)
        )
    return subjects


def invoke(
    *,
    principal: Principal,
    owner: str,
    name: str,
    version: str | None,
    call: CallInput,
    project: str = "",
    request_id: str,
) -> Outcome:
    model, target, is_member = authorise_call(principal, owner, name, version)
    if call.stdout and not is_member:
        raise AuthorizationError("stdout=true is only for the model's owners")
    _input_schema_check(target, call)
    team = caller_team(principal)
    project = (project or (principal.key.project if principal.key else ""))[:64]
    if any(ord(char) < 32 or ord(char) == 127 for char in project):
        # PostgreSQL text cannot hold NUL, and a project name is one line of text.
        raise InputError("X-Project: must be a single line of text without control characters")

    def rejected(error: ApiError) -> ApiError:
        metering.record_rejection(
            request_id=request_id,
            principal=principal,
            team=team,
            model=model,
            target=target,
            project=project,
            error_type=error.error_type,
            input_bytes=call.size,
            at=timezone.now(),
        )
        return error

    decisions = limits.check_rates(_rate_subjects(principal, team))
    headers = limits.rate_limit_headers(decisions)
    refused = next((d for d in decisions if not d.allowed), None)
    if refused is not None:
        raise rejected(
            RateLimitError(
                f"rate limit of the {refused.name} reached ({refused.limit} calls per minute); "
                f"retry in {max(1, refused.reset_seconds)} s",
                headers=headers,
            )
        )
    try:
        budget_selectors.cap_check(team, project)
    except PaymentRequiredError as error:
        raise rejected(error) from None
    backend_name = "http" if target.build.runtime == "http" else settings.EXECUTION_BACKEND
    invocation = Invocation.objects.create(
        id=request_id,
        model=model,
        version=target.version,
        build=target.build,
        version_label=target.label,
        caller_team=team,
        caller_user=principal.user,
        api_key=principal.key,
        project=project,
        is_async=call.output == "void",
        status=InvocationStatus.QUEUED if call.output == "void" else InvocationStatus.RUNNING,
        started_at=None if call.output == "void" else timezone.now(),
        backend=backend_name,
        hardware_class=model.hardware_class,
        timeout_seconds=call.timeout,
        want_stdout=call.stdout,
        input_content_type=call.content_type,
        input_bytes=call.size,
        input_preview=storable(call.preview)[:128],
        webhook_url=call.webhook,
        input_data=_stored_input(call.data)
        if call.output == "void" or backend_name == "celery"
        else None,
    )
    if call.output == "void":
        transaction.on_commit(lambda: enqueue_invocation(invocation))
        if invocation.is_final:
            # Outside a transaction the queue was tried at once, and it refused the call
            # (broker down): say so now rather than accept a call that will never run.
            raise UnavailableError(invocation.error["message"], headers=headers)
        return Outcome(invocation, is_member, headers)
    try:
        with limits.concurrency_slot(
            "team",
            f"team:{team.pk}",
            settings.TEAM_CONCURRENCY_LIMIT,
            ttl_seconds=int(call.timeout) + 60,
        ):
            run_invocation(invocation, call.data)
    except limits.ConcurrencyLimitExceeded as exc:
        finish(
            invocation,
            ExecutionResult(
                "failed", error={"message": "concurrency limit", "error_type": "RateLimitError"}
            ),
            status=InvocationStatus.CANCELED,
        )
        raise RateLimitError(
            f"the team already has {exc.limit} calls running; retry when one finishes",
            headers={**headers, "Retry-After": "1"},
        ) from None
    return Outcome(invocation, is_member, headers)


def enqueue_invocation(invocation: Invocation) -> None:
    try:
        get_backend(invocation.backend).submit(str(invocation.pk), invocation.hardware_class)
    except Exception:
        logger.exception("could not queue invocation %s", invocation.pk)
        finish(
            invocation,
            ExecutionResult(
                "failed",
                error={
                    "message": "the task queue is unavailable; nothing was run",
                    "error_type": "UnavailableError",
                },
            ),
        )


def run_invocation(invocation: Invocation, data, *, backend: str | None = None) -> Invocation:
    """Run a claimed-or-new invocation synchronously on its backend (or `backend`, as a
    worker does for calls the celery backend sent it) and record the outcome. A backend that
    cannot take the call leaves the invocation failed and raises 503."""
    if invocation.status != InvocationStatus.RUNNING:
        invocation.status = InvocationStatus.RUNNING
        invocation.started_at = timezone.now()
        Invocation.objects.filter(pk=invocation.pk).update(
            status=invocation.status, started_at=invocation.started_at
        )
    request = ExecutionRequest(
        request_id=str(invocation.pk),
        build_id=str(invocation.build_id),
        content_type=invocation.input_content_type,
        data=data,
        timeout=invocation.timeout_seconds,
        hardware_class=invocation.hardware_class,
    )
    try:
        result = get_backend(backend or invocation.backend).run(request)
    except ExecutionUnavailable as exc:
        finish(
            invocation,
            ExecutionResult(
                "failed", error={"message": str(exc), "error_type": "UnavailableError"}
            ),
        )
        raise UnavailableError(f"the model cannot be run right now: {exc}") from None
    except BaseException:
        finish(
            invocation,
            ExecutionResult(
                "failed", error={"message": "internal error", "error_type": "ServerError"}
            ),
        )
        raise
    finish(invocation, result)
    return invocation


def _stored_input(data):
    """The input of a call that runs elsewhere, stored until it runs. It must survive the
    round trip through PostgreSQL unchanged, which U+0000 cannot."""
    if storable(data) != data:
        raise InputError(
            "this input contains U+0000, which can only be sent to a synchronous call on the "
            "local backend"
        )
    return data


def storable(value):
    """PostgreSQL's text and jsonb cannot hold U+0000; what is stored (not what the caller
    receives) has it escaped."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value


def finish(invocation: Invocation, result: ExecutionResult, *, status: str | None = None) -> bool:
    """Record the outcome once: a second finish (a retried task, a cancel racing the end)
    changes nothing. Returns whether this call recorded it."""
    import json

    status = status or {
        "succeeded": InvocationStatus.SUCCEEDED,
        "timeout": InvocationStatus.TIMEOUT,
    }.get(result.status, InvocationStatus.FAILED)
    now = timezone.now()
    output_bytes = len(json.dumps(result.result)) if result.result is not None else 0
    fields = {
        "status": status,
        "result": storable(result.result),
        "result_content_type": result.content_type,
        "error": storable(result.error),
        "stdout": storable((result.stdout or "")[:65536]),
        "cold_start": result.cold_start,
        "model_duration": result.duration,
        "output_bytes": output_bytes,
        "finished_at": now,
        "input_data": None,
    }
    with transaction.atomic():
        # The final status and the usage record commit together or not at all.
        updated = Invocation.objects.filter(
            pk=invocation.pk, status__in=[InvocationStatus.QUEUED, InvocationStatus.RUNNING]
        ).update(**fields, started_at=invocation.started_at or now)
        for key, value in fields.items():
            setattr(invocation, key, value)
        if invocation.started_at is None:
            invocation.started_at = now
        if updated:
            metering.record_invocation(invocation)
    # The caller receives exactly what the model answered.
    invocation.result, invocation.error = result.result, result.error
    invocation.stdout = (result.stdout or "")[:65536]
    metrics.invocation_finished(invocation, recorded=bool(updated))
    if updated and (invocation.is_async or invocation.backend == "celery"):
        # Only a caller waiting on another host (the celery backend) listens for this.
        _notify_finished(invocation)
        if invocation.webhook_url:
            transaction.on_commit(lambda: _queue_webhook(invocation))
    return bool(updated)


def _notify_finished(invocation: Invocation) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, str(invocation.pk)])


def _queue_webhook(invocation: Invocation) -> None:
    from .tasks import deliver_invocation_webhook

    try:
        deliver_invocation_webhook.apply_async(
            (str(invocation.pk),), queue=settings.CELERY_TASK_DEFAULT_QUEUE
        )
    except Exception:
        logger.exception("could not queue the webhook of invocation %s", invocation.pk)


def invocation_get(principal: Principal, request_id) -> Invocation:
    """An invocation, to its caller's namespace and to the model's owners."""
    invocation = (
        Invocation.objects.select_related("model", "model__owner", "version", "caller_team")
        .filter(pk=request_id)
        .first()
    )
    if invocation is None or not (
        principal.is_member(invocation.caller_team) or principal.is_member(invocation.model.owner)
    ):
        raise NotFoundError(f"No invocation {request_id}")
    return invocation


def invocation_cancel(principal: Principal, invocation: Invocation) -> Invocation:
    if not principal.is_member(invocation.caller_team):
        raise NotFoundError(f"No invocation {invocation.pk}")
    if invocation.is_final:
        return invocation
    if invocation.status == InvocationStatus.RUNNING:
        get_backend(invocation.backend).cancel(str(invocation.pk))
    finish(
        invocation,
        ExecutionResult(
            "failed", error={"message": "canceled by the caller", "error_type": "CanceledError"}
        ),
        status=InvocationStatus.CANCELED,
    )
    invocation.refresh_from_db()
    return invocation


def invocations_reap(*, now=None) -> int:
    """Give every abandoned call its final status (and so its usage record). Returns how
    many were reaped."""
    from datetime import timedelta

    from django.db.models import DurationField, ExpressionWrapper, F, Q

    now = now or timezone.now()
    deadline = ExpressionWrapper(
        F("timeout_seconds") * timedelta(seconds=1)
        + timedelta(seconds=settings.GATEWAY_REAP_GRACE_SECONDS),
        output_field=DurationField(),
    )
    stale = (
        Invocation.objects.select_related("model__owner", "version", "api_key")
        .annotate(deadline=deadline)
        .filter(
            Q(status=InvocationStatus.RUNNING, started_at__lt=now - F("deadline"))
            | Q(
                status=InvocationStatus.QUEUED,
                created_at__lt=now - timedelta(seconds=settings.GATEWAY_QUEUED_LIMIT_SECONDS),
            )
        )[:500]
    )
    reaped = 0
    for invocation in stale:
        lost = invocation.status == InvocationStatus.RUNNING
        message = (
            "the process running this call stopped before it finished; nothing was returned"
            if lost
            else "this call waited too long in the queue and was not run"
        )
        reaped += finish(
            invocation,
            ExecutionResult("failed", error={"message": message, "error_type": "InterruptedError"}),
        )
    if reaped:
        logger.warning("reaped %d abandoned invocations", reaped)
    return reaped
