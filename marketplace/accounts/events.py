"""What accounts announce when they change: teams, memberships, API keys, refused log-ins.

Accounts sit below the audit trail (which reads teams, roles and keys), so they do not write
it: a service sends `account_changed` with the event's name and the details the trail records,
inside the same transaction as the change, and the audit app records it
(marketplace/audit/signals.py). An event nobody records is refused, so a change is never made
without its trail."""

from __future__ import annotations

from django.dispatch import Signal

# The events, by the name the audit trail stores (marketplace.audit.models.Action lists them).
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
MEMBER_ADDED = "member.added"
MEMBER_REMOVED = "member.removed"
MEMBER_ROLE_CHANGED = "member.role_changed"
TEAM_CREATED = "team.created"
TEAM_CHANGED = "team.changed"
TEAM_DELETED = "team.deleted"
TEAM_SIGNING_SECRET_ROTATED = "team.signing_secret_rotated"  # noqa: S105 (an event name)
LOGIN_THROTTLED = "login.throttled"
LOGIN_SSO_REQUIRED = "login.sso_required"
SSO_USER_CREATED = "sso.user_created"
SSO_FAILED = "sso.failed"
SSO_DEPROVISIONED = "sso.deprovisioned"
SSO_MAPPING_CREATED = "sso.mapping_created"
SSO_MAPPING_DELETED = "sso.mapping_deleted"

# Sent with `action` (one of the names above) and the keyword arguments of
# marketplace.audit.services.audit_record (actor, target, team, before, after, request, ...).
account_changed = Signal()


class EventNotRecorded(RuntimeError):
    pass


def announce(action: str, **details) -> None:
    if not account_changed.send(sender=action, action=action, **details):
        raise EventNotRecorded(f"nothing records the account event {action!r}")
