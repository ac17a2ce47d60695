"""Reads of the audit trail: whose trail a principal may read, and the events a filter
selects (the same for a page, its exports and the API)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import QueryDict

from marketplace.accounts import policies
from marketplace.accounts.models import Team
from marketplace.accounts.scopes import is_full_access
from marketplace.core.errors import AuthorizationError, InputError, NotFoundError

from .filters import AuditEventFilter
from .models import AuditEvent


def audit_team_get(principal, slug: str) -> Team:
    """The team whose trail `principal` asks for. To a non-member it does not exist (404); a
    member needs to be an owner or admin (403). Platform admins (staff) read every team's.
    With a key, only a personal full-access key will do, as for managing keys and members:
    a narrow or team key must not be able to read who holds which key."""
    user = principal.user
    staff = user is not None and user.is_staff
    team = Team.objects.filter(slug=slug).first()
    if team is None or not (staff or principal.is_member(team)):
        raise NotFoundError(f"No team named {slug!r}")
    _require_session_or_full_personal_key(principal)
    if not staff and not policies.can_administer(user, team):
        raise AuthorizationError(f"The audit trail of {team.slug} is for its owners and admins")
    return team


def require_platform_admin(principal) -> None:
    user = principal.user
    if user is None or not user.is_staff:
        raise AuthorizationError("The platform's audit trail is for platform admins")
    _require_session_or_full_personal_key(principal)


def _require_session_or_full_personal_key(principal) -> None:
    key = principal.key
    if key is not None and (not key.team.is_personal or not is_full_access(key.scopes)):
        raise AuthorizationError(
            "Reading the audit trail needs a browser session or a personal full-access key"
        )


def team_events(team: Team) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(team=team)


def all_events() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.all()


def events_filtered(events: QuerySet[AuditEvent], params: QueryDict | dict) -> QuerySet:
    """`events` narrowed by the filters in `params` (see AuditEventFilter), newest first;
    InputError naming the first bad parameter."""
    filterset = AuditEventFilter(params, queryset=events)
    if not filterset.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in filterset.errors.items()}
        name, messages = next(iter(fields.items()))
        raise InputError(f"{name}: {' '.join(messages)}", fields=fields)
    data = filterset.form.cleaned_data
    if data.get("start") and data.get("end") and data["start"] > data["end"]:
        raise InputError("start: must not be after end", fields={"start": ["after end"]})
    return filterset.qs.order_by("-at", "-id")
