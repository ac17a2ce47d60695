"""Calls the platform refused with a 4xx before running them, recorded for their caller so
the Calls page can show them with their reason. Both ways into a call (the DRF view and any
faster path) record through `refused_call_record`, the one place that decides what is kept.

Bounded by construction: one row per caller (key or user), reason and minute, whose count
goes up with each refusal (one INSERT ... ON CONFLICT statement), so a caller hammering a
limit adds at most one row a minute per reason. A call whose key is unknown cannot be
attributed and is not recorded (401s are the login throttle's business)."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from marketplace.accounts.authentication import key_from_header
from marketplace.accounts.models import Team
from marketplace.accounts.principals import Principal
from marketplace.accounts.services import api_key_authenticate
from marketplace.core.errors import ApiError, AuthenticationError

from .models import RefusedCall

logger = logging.getLogger(__name__)

# Set on an error whose call already has its invocation row (the team's concurrency limit,
# met after the call was accepted): the Calls page shows that row, so it is not recorded
# again as a refusal.
CALL_ALREADY_RECORDED = "call_already_recorded"


def refusal_team(principal: Principal) -> Team | None:
    """The namespace a refused call is shown to: its key's team, or the caller's personal
    namespace (never created here: a user without one has made no call to show)."""
    if principal.key is not None:
        return principal.key.team
    return Team.objects.filter(personal_owner=principal.user).first()


def refused_call_record(
    *,
    principal: Principal | None,
    owner: str,
    name: str,
    version: str | None,
    error: ApiError,
    request_id: str,
    at: datetime | None = None,
) -> bool:
    """Count `error`, a refusal of the call `request_id` to `owner/name[/version]`, for its
    caller. Returns whether it was recorded. Never raises: a refusal is answered whether or
    not it could be recorded."""
    if not (400 <= error.status_code < 500) or isinstance(error, AuthenticationError):
        return False
    if getattr(error, CALL_ALREADY_RECORDED, False):
        return False
    if principal is None or principal.user is None:
        return False
    try:
        team = refusal_team(principal)
        if team is None:
            return False
        at = at or timezone.now()
        key = principal.key
        subject = f"key:{key.pk}" if key is not None else f"user:{principal.user.pk}"
        values = [
            team.pk,
            key.pk if key is not None else None,
            principal.user.pk,
            subject,
            error.error_type[:32],
            error.status_code,
            _storable(error.message)[:500],
            _storable(f"{owner}/{name}")[:140],
            _storable(version or "")[:64],
            request_id,
            at.replace(second=0, microsecond=0),
            at,
            at,
        ]
        with connection.cursor() as cursor:
            cursor.execute(_upsert_sql(), values)
    except DatabaseError:
        logger.exception("could not record the refusal of call %s", request_id)
        return False
    return True


def _storable(text: str) -> str:
    return text.replace("\x00", "\\u0000")


@functools.cache
def _upsert_sql() -> str:
    table = RefusedCall._meta.db_table
    return (
        f"INSERT INTO {table} (team_id, api_key_id, user_id, subject, reason, status_code, "  # noqa: S608
        "message, model_name, version_label, request_id, minute, count, first_at, last_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s) "
        "ON CONFLICT (subject, reason, minute) DO UPDATE "
        f"SET count = {table}.count + 1, last_at = EXCLUDED.last_at"
    )


def refused_calls_purge(*, now: datetime | None = None) -> int:
    """Delete refused calls older than REFUSED_CALL_RETENTION_DAYS. Returns how many."""
    since = (now or timezone.now()) - timedelta(days=settings.REFUSED_CALL_RETENTION_DAYS)
    deleted, _ = RefusedCall.objects.filter(first_at__lt=since).delete()
    return deleted


def principal_before_authentication(request) -> Principal | None:
    """Who sent a request refused before authentication ran (its body too large): the
    holder of a valid key in its Authorization header, else the signed-in user of its
    session, else no one. A key that does not authenticate is not told apart from none."""
    meta = request.META
    raw_key = key_from_header(meta.get("HTTP_AUTHORIZATION", ""))
    if raw_key:
        try:
            key = api_key_authenticate(raw_key)
        except AuthenticationError:
            return None
        return Principal(key.created_by, key)
    user = getattr(getattr(request, "_request", request), "user", None)
    if user is not None and user.is_authenticated:
        return Principal(user)
    return None
