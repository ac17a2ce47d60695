"""Writing the audit trail.

`audit_record` is called by the service that performs an action, inside that action's
transaction. It does not swallow errors: if the event cannot be written, the exception
propagates and the action is rolled back with it. A security action that happened without
its record would make the trail untrustworthy, so we prefer "no record, no action"; the
insert is one small row in a table nothing else locks, so in practice it fails only when the
database itself does, and then the action could not have been committed either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import models

from marketplace.accounts.models import Team, User

from . import context
from .models import Action, AuditEvent

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
# Keys whose values never enter `before`/`after`, at any depth, whatever a caller passes.
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "secret",
        "secret_hash",
        "raw_key",
        "key_secret",
        "token",
        "api_key",
        "authorization",
        "webhook_secret",
        "refresh_token",
        "sealed_refresh_token",
    }
)

# Stable names for targets, independent of Django's app labels.
TARGET_TYPES = {
    "accounts.apikey": "api_key",
    "accounts.membership": "membership",
    "accounts.team": "team",
    "accounts.user": "user",
    "accounts.groupmapping": "group_mapping",
    "catalog.model": "model",
    "catalog.version": "version",
    "billing.budget": "budget",
    "billing.computeprice": "price",
    "data.collection": "collection",
}


def audit_record(
    *,
    action: str,
    target: models.Model | None = None,
    team: Team | None = None,
    before: Mapping | None = None,
    after: Mapping | None = None,
    actor: User | None = None,
    principal=None,
    target_repr: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    request=None,
    via: str | None = None,
) -> AuditEvent:
    """Record that `action` was done to `target` (a model instance; or give `target_type`,
    `target_id` and `target_repr` directly), concerning `team`, by `actor` (default: the
    request's user). The channel, key prefix, IP and request id come from the current request
    (or `request`), and from `principal` (marketplace.accounts.principals) when a caller has
    one, so a key-authenticated call is recorded with its key."""
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}; add it to audit.models.Action")
    who = context.actor_for(request, user=actor, principal=principal, via=via)
    if target is not None:
        target_type = target_type or TARGET_TYPES.get(
            target._meta.label_lower, target._meta.model_name
        )
        target_id = target_id if target_id is not None else str(target.pk or "")
        target_repr = target_repr if target_repr is not None else str(target)
    user = who.user if getattr(who.user, "pk", None) else None
    return AuditEvent.objects.create(
        action=action,
        actor=user,
        actor_name=(user.get_username() if user is not None else "")[:150],
        via=who.via,
        key_prefix=who.key_prefix,
        ip=who.ip,
        user_agent=who.user_agent,
        request_id=who.request_id,
        team=team if team is not None and team.pk else None,
        team_slug=team.slug if team is not None else "",
        target_type=(target_type or "")[:32],
        target_id=(target_id or "")[:64],
        target_repr=(target_repr or "")[:200],
        before=scrub(before),
        after=scrub(after),
    )


def scrub(value):
    """A copy of `value` with every sensitive key's value replaced by a marker."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if str(key).lower() in SENSITIVE_KEYS else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value
