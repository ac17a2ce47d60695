"""Keeping a call's input and output, only when its caller asked for it: the key's
"keep inputs and outputs" setting (`ApiKey.keep_call_bodies`) or the call's `keep_io`
parameter, which overrides the key either way. Kept for the caller team's
`call_body_retention_days`, then deleted by the periodic `kept_call_bodies_purge`; shown
only to that team (`kept_body_for`).

Size: each body is kept as text up to CALL_BODY_KEEP_MAX_BYTES (UTF-8); a JSON or text
body over it is cut there and marked truncated; a binary one (base64) over it is not kept
at all, only marked too large, since half a file is of no use."""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now

from marketplace.accounts.models import ApiKey, Team, User
from marketplace.accounts.policies import can_administer
from marketplace.accounts.principals import Principal
from marketplace.audit.models import Action
from marketplace.audit.services import audit_record
from marketplace.core.errors import AuthorizationError, InputError

from .models import Invocation, KeptCallBody

MAX_RETENTION_DAYS = 90


def wants_bodies_kept(principal: Principal, keep_io: bool | None) -> bool:
    """The call's `keep_io` when it was given, else its key's setting; a session's calls
    (the console) keep nothing unless asked."""
    if keep_io is not None:
        return keep_io
    return bool(principal.key is not None and principal.key.keep_call_bodies)


def _kept_text(content_type: str, data) -> tuple[str, bool, bool]:
    """(text, kept, truncated) of a body under the size limit."""
    if data is None:
        return "", False, False
    text = json.dumps(data, ensure_ascii=False) if content_type == "json" else str(data)
    text = text.replace("\x00", "\\u0000")  # PostgreSQL text cannot hold U+0000
    limit = settings.CALL_BODY_KEEP_MAX_BYTES
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text, True, False
    if content_type == "binary":
        return "", False, True
    return encoded[:limit].decode("utf-8", errors="ignore"), True, True


def input_keep(invocation: Invocation, *, content_type: str, data) -> KeptCallBody:
    """Keep the input of a call that asked for it (its output follows in `output_keep`)."""
    text, kept, truncated = _kept_text(content_type, data)
    return KeptCallBody.objects.create(
        invocation=invocation,
        team_id=invocation.caller_team_id,
        input_text=text,
        input_kept=kept,
        input_truncated=truncated,
    )


def output_keep(invocation: Invocation, *, content_type: str, data) -> None:
    text, kept, truncated = _kept_text(content_type, data)
    KeptCallBody.objects.filter(pk=invocation.pk).update(
        output_text=text,
        output_content_type=content_type[:8],
        output_kept=kept,
        output_truncated=truncated,
    )


def kept_body_for(principal: Principal | None, invocation: Invocation) -> KeptCallBody | None:
    """The kept bodies of a call, to a member of its caller team only: a model's owners see
    its calls, never what another team sent it."""
    if principal is None or not principal.is_member(invocation.caller_team):
        return None
    return KeptCallBody.objects.filter(pk=invocation.pk).first()


def kept_call_bodies_purge() -> int:
    """Delete every kept body older than its team's retention. Returns how many."""
    retention = ExpressionWrapper(
        F("team__call_body_retention_days") * timedelta(days=1), output_field=DurationField()
    )
    deleted, _ = (
        KeptCallBody.objects.annotate(retention=retention)
        .filter(created_at__lt=Now() - F("retention"))
        .delete()
    )
    return deleted


def api_key_set_keep_call_bodies(*, actor: User, key: ApiKey, keep: bool) -> ApiKey:
    """Turn keeping the inputs and outputs of a key's calls on or off (its team's admins)."""
    if not can_administer(actor, key.team):
        raise AuthorizationError("Only the team's owners and admins can change its keys")
    if key.keep_call_bodies != keep:
        before = key.keep_call_bodies
        key.keep_call_bodies = keep
        key.save(update_fields=["keep_call_bodies"])
        audit_record(
            action=Action.KEY_KEEP_CALL_BODIES_CHANGED,
            actor=actor,
            team=key.team,
            target=key,
            before={"keep_call_bodies": before},
            after={"keep_call_bodies": keep},
        )
    return key


def team_set_call_body_retention(*, actor: User, team: Team, days: int) -> Team:
    """How many days (1 to 90) the team keeps the call bodies its callers asked to keep."""
    if not can_administer(actor, team):
        raise AuthorizationError("Only the team's owners and admins can change its retention")
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise InputError(
            f"retention: from 1 to {MAX_RETENTION_DAYS} days",
            fields={"retention_days": ["out of range"]},
        )
    if team.call_body_retention_days != days:
        before = team.call_body_retention_days
        team.call_body_retention_days = days
        team.save(update_fields=["call_body_retention_days"])
        audit_record(
            action=Action.TEAM_CALL_BODY_RETENTION_CHANGED,
            actor=actor,
            team=team,
            target=team,
            before={"call_body_retention_days": before},
            after={"call_body_retention_days": days},
        )
    return team
