"""The request side of a call: who may call what, rate limits, the budget cap, and the
invocation row. From there `lifecycle` runs it (or queues it) and records its outcome."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing import metering
from billing.budgets import selectors as budget_selectors
from catalog import selectors as catalog_selectors
from catalog.models import Model
from catalog.packages import input_validator
from catalog.packages.input_errors import first_input_problem
from catalog.versions import Target, resolve_version
from execution.backends import ExecutionResult
from marketplace.accounts.principals import Principal
from marketplace.accounts.scopes import allows_model
from marketplace.accounts.services import anonymous_namespace, personal_namespace_ensure
from marketplace.core import limits
from marketplace.core.errors import (
    ApiError,
    AuthenticationError,
    AuthorizationError,
    InputError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    UnavailableError,
)
from marketplace.core.instances import unsaved
from marketplace.core.postgresql.params import statement_params

from . import call_bodies, lifecycle, refusals
from .calls import CallInput
from .lifecycle import storable
from .models import Invocation, InvocationStatus

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    invocation: Invocation
    is_member: bool
    rate_headers: dict


def _input_schema_check(target: Target, call: CallInput) -> None:
    schema = target.build.manifest.get("input_schema")
    if not schema or call.content_type != "json":
        return
    problem = first_input_problem(input_validator(schema), call.data)
    if problem is not None:
        raise InputError(
            f"the input does not match the model's input schema at {problem.sentence()}",
            fields={problem.json_path: [f"{problem.message} ({problem.rule})"]},
            extra={"path": list(problem.path), "rule": problem.rule},
        )


def caller_team(principal: Principal):
    if principal.key is not None:
        return principal.key.team
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
    parent=None,
) -> Outcome:
    """Call a model for `principal`; `parent` (a call_credentials.CallContext) is the running
    call this one is made from. A call the platform refuses (a 4xx) is recorded for its
    caller with its reason (`refusals`), and raised."""
    try:
        return _invoke(
            principal=principal,
            owner=owner,
            name=name,
            version=version,
            call=call,
            project=project,
            request_id=request_id,
            parent=parent,
        )
    except ApiError as error:
        refusals.refused_call_record(
            principal=principal,
            owner=owner,
            name=name,
            version=version,
            error=error,
            request_id=request_id,
        )
        raise


def _invoke(
    *,
    principal: Principal,
    owner: str,
    name: str,
    version: str | None,
    call: CallInput,
    project: str,
    request_id: str,
    parent,
) -> Outcome:
    model, target, is_member = authorise_call(principal, owner, name, version)
    # stdout=true is "only respected when the caller is the algorithm author" (Algorithmia's
    # v1 API): from anyone else it is ignored, not refused.
    wants_stdout = call.stdout and is_member
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

    try:
        budget_selectors.cap_check(team, project)
    except PaymentRequiredError as error:
        raise rejected(error) from None
    return _start(
        principal=principal,
        model=model,
        target=target,
        team=team,
        call=call,
        project=project,
        request_id=request_id,
        is_member=is_member,
        wants_stdout=wants_stdout,
        rate_subjects=_rate_subjects(principal, team),
        rejected=rejected,
        parent=parent,
    )


def anonymous_try_model(owner: str, name: str) -> Model:
    """The model a call without a key or session asks for, if it takes anonymous tries;
    otherwise the 401 of any such call, whether the model exists or not (checked before the
    body is read)."""
    try:
        model = catalog_selectors.model_get(Principal(None), owner, name)
    except NotFoundError:
        raise AuthenticationError() from None
    if not model.anonymous_tries or settings.ANONYMOUS_TRIES_PER_DAY <= 0:
        raise AuthenticationError()
    return model


def invoke_anonymous(
    *,
    model: Model,
    version: str | None,
    call: CallInput,
    address: str | None,
    request_id: str,
) -> Outcome:
    """A visitor's call without an account: only to a public model whose owners allow
    anonymous tries (else the 401 any call without a key gets), synchronous, at most
    ANONYMOUS_TRIES_PER_DAY per client address and model, under the anonymous namespace's
    rate and concurrency limits. It is an invocation of the `anonymous` namespace, and no
    usage record is written for it (billing.metering.usage_of): nobody pays for it."""
    principal = Principal(None)
    per_day = settings.ANONYMOUS_TRIES_PER_DAY
    if address is None:
        raise AuthenticationError()
    if call.output == "void" or call.webhook:
        raise AuthenticationError(
            "Without an account a model can only be tried with a synchronous call: "
            "sign up and send an API key for output=void or webhook calls"
        )
    target = resolve_version(model, version, is_member=False)
    _input_schema_check(target, call)
    team = anonymous_namespace()
    decisions = limits.check_rates(
        [("team", f"team:{team.pk}", settings.TEAM_RATE_LIMIT_PER_MINUTE)]
    )
    headers = limits.rate_limit_headers(decisions)
    refused = next((d for d in decisions if not d.allowed), None)
    if refused is None:
        daily = limits.check_rates(
            [("anonymous", f"{address}:{model.pk}", per_day)], window=ANONYMOUS_WINDOW
        )
        headers = limits.rate_limit_headers(daily)
        refused = next((d for d in daily if not d.allowed), None)
        if refused is not None:
            wait = max(1, refused.reset_seconds)
            at = timezone.now() + timedelta(seconds=wait)
            raise RateLimitError(
                f"the {per_day} {'try' if per_day == 1 else 'tries'} a day without an account "
                f"of {model.full_name} from this address {'is' if per_day == 1 else 'are'} "
                f"used up; the next one is free in {_human_wait(wait)} (at "
                f"{at:%H:%M} UTC). Sign up to call it without this limit",
                headers={**headers, "Retry-After": str(wait)},
            )
    else:
        raise RateLimitError(
            f"too many calls without an account right now; retry in "
            f"{max(1, refused.reset_seconds)} s",
            headers={**headers, "Retry-After": str(max(1, refused.reset_seconds))},
        )
    return _start(
        principal=principal,
        model=model,
        target=target,
        team=team,
        call=call,
        project="",
        request_id=request_id,
        is_member=False,
        wants_stdout=False,
        rate_subjects=[],  # checked above; nobody is charged for a refusal
        rejected=lambda error: error,
        parent=None,
        headers=headers,
    )


ANONYMOUS_WINDOW = 24 * 60 * 60


def _human_wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    minutes = -(-seconds // 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _start(
    *,
    principal: Principal,
    model: Model,
    target: Target,
    team,
    call: CallInput,
    project: str,
    request_id: str,
    is_member: bool,
    wants_stdout: bool,
    rate_subjects: list[tuple[str, str, int]],
    rejected,
    parent,
    headers: dict | None = None,
) -> Outcome:
    """Admit the call (`rate_subjects` and the team's concurrency), record its invocation,
    then run it (or queue it). `rejected(error)` meters a refusal before it is raised;
    `parent` is the running call this one is made from; `headers` are rate headers already
    known (an anonymous try's daily limit)."""
    backend_name = "http" if target.build.runtime == "http" else settings.EXECUTION_BACKEND
    invocation = unsaved(
        Invocation,
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
        want_stdout=wants_stdout,
        input_content_type=call.content_type,
        input_bytes=call.size,
        input_preview=storable(call.preview)[:128],
        webhook_url=call.webhook,
        parent_id=parent.invocation_id if parent else None,
        depth=parent.depth + 1 if parent else 0,
        keep_bodies=call_bodies.wants_bodies_kept(principal, call.keep_io),
        input_data=_stored_input(call.data)
        if call.output == "void" or backend_name == lifecycle.DISPATCHED
        else None,
    )
    # The rate check, a synchronous call's team slot and the invocation's row: one round
    # trip on PostgreSQL (limits.admit), the row written only if the call is admitted.
    admission = limits.admit(
        rate_subjects,
        limits.SlotRequest(
            "team",
            f"team:{team.pk}",
            0 if call.output == "void" else settings.TEAM_CONCURRENCY_LIMIT,
            ttl_seconds=int(call.timeout) + 60,
        ),
        then=(_admitted_insert_sql(), _insert_values(invocation)),
    )
    headers = limits.rate_limit_headers(admission.decisions) or headers or {}
    refused = next((d for d in admission.decisions if not d.allowed), None)
    if refused is not None:
        raise rejected(
            RateLimitError(
                f"rate limit of the {refused.name} reached ({refused.limit} calls per minute); "
                f"retry in {max(1, refused.reset_seconds)} s",
                headers=headers,
            )
        )
    if admission.then_ran:
        _inserted(invocation)
    else:
        _insert(invocation)
    if invocation.keep_bodies:
        call_bodies.input_keep(invocation, content_type=call.content_type, data=call.data)
    if call.output == "void":
        transaction.on_commit(lambda: lifecycle.enqueue_invocation(invocation))
        if invocation.is_final:
            # Outside a transaction the queue was tried at once, and it refused the call
            # (broker down): say so now rather than accept a call that will never run.
            raise UnavailableError(invocation.error["message"], headers=headers)
        return Outcome(invocation, is_member, headers)
    if admission.slots_full:
        lifecycle.finish(
            invocation,
            ExecutionResult(
                "failed", error={"message": "concurrency limit", "error_type": "RateLimitError"}
            ),
            status=InvocationStatus.CANCELED,
        )
        error = RateLimitError(
            f"the team already has {settings.TEAM_CONCURRENCY_LIMIT} calls running; retry "
            "when one finishes",
            headers={**headers, "Retry-After": "1"},
        )
        setattr(error, refusals.CALL_ALREADY_RECORDED, True)  # its invocation shows it
        raise error
    slot = admission.slot
    try:
        lifecycle.run_invocation(invocation, call.data, slot=slot)
    finally:
        if slot is not None:
            slot.release()  # nothing to do when the outcome's statement released it
    return Outcome(invocation, is_member, headers)


@functools.cache
def _admitted_insert_sql() -> str:
    """The invocation's INSERT for `limits.admit`: one row from its `{gate}`, when admitted.
    Typed placeholders, as a SELECT list does not take its types from the INSERT."""
    fields = Invocation._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(f"%s::{field.cast_db_type(connection)}" for field in fields)
    return (
        f"INSERT INTO {Invocation._meta.db_table} ({columns}) "  # noqa: S608
        f"SELECT {placeholders} FROM {{gate}} RETURNING id"
    )


@functools.cache
def _insert_sql() -> str:
    fields = Invocation._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {Invocation._meta.db_table} ({columns}) VALUES ({placeholders})"  # noqa: S608


def _insert_values(invocation: Invocation) -> list:
    return statement_params(invocation, connection)


def _insert(invocation: Invocation) -> None:
    """Invocation.objects.create without compiling the same INSERT for every call (the
    model has no signals and no auto_now fields, so nothing else happens on save)."""
    with connection.prepared_cursor() as cursor:
        cursor.execute(_insert_sql(), _insert_values(invocation))
    _inserted(invocation)


def _inserted(invocation: Invocation) -> None:
    invocation._state.adding = False
    invocation._state.db = connection.alias


def _stored_input(data):
    """The input of a call that runs elsewhere, stored until it runs. It must survive the
    round trip through PostgreSQL unchanged, which U+0000 cannot."""
    if storable(data) != data:
        raise InputError(
            "this input contains U+0000, which can only be sent to a synchronous call on the "
            "local backend"
        )
    return data


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
    """Cancel a call, for its caller's namespace only."""
    if not principal.is_member(invocation.caller_team):
        raise NotFoundError(f"No invocation {invocation.pk}")
    return lifecycle.cancel(invocation)
