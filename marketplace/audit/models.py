"""The audit trail: one row per security-relevant action, written in the same transaction as
the action, and never changed afterwards.

Rows are append-only in the database itself (migration 0002): PostgreSQL refuses any UPDATE
or DELETE of a row, whatever code path tries. The one change it allows is the one deletions
elsewhere need: the actor's or the team's foreign key set to NULL when that user or team is
deleted; `actor_name` and `team_slug` keep who and which as text. (An operator who must purge
old rows for a retention policy does it in SQL as the table's owner, with the trigger
disabled, outside the application.)
"""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from marketplace.accounts import events
from marketplace.accounts.models import Team, User


class Action(models.TextChoices):
    """What happened. Dotted: the part before the dot is what it happened to, so a filter on
        "key" finds every key event. New actions are added here, not as field choices, so adding
        one needs no migration. The names of account events are accounts' own (they announce them,
    marketplace/accounts/events.py)."""

    KEY_CREATED = events.KEY_CREATED, "API key created"
    KEY_REVOKED = events.KEY_REVOKED, "API key revoked"
    MEMBER_ADDED = events.MEMBER_ADDED, "Member added"
    MEMBER_REMOVED = events.MEMBER_REMOVED, "Member removed"
    MEMBER_ROLE_CHANGED = events.MEMBER_ROLE_CHANGED, "Member's role changed"
    TEAM_CREATED = events.TEAM_CREATED, "Team created"
    TEAM_CHANGED = events.TEAM_CHANGED, "Team name or description changed"
    TEAM_DELETED = events.TEAM_DELETED, "Team deleted"
    TEAM_SIGNING_SECRET_ROTATED = (
        events.TEAM_SIGNING_SECRET_ROTATED,
        "Webhook signing secret rotated",
    )
    KEY_KEEP_CALL_BODIES_CHANGED = (
        "key.keep_call_bodies_changed",
        "API key's keeping of call inputs and outputs changed",
    )
    TEAM_CALL_BODY_RETENTION_CHANGED = (
        "team.call_body_retention_changed",
        "Retention of kept call inputs and outputs changed",
    )
    MODEL_PUBLISHED = "model.published", "Model version published"
    MODEL_VISIBILITY_CHANGED = "model.visibility_changed", "Model visibility changed"
    MODEL_DELETED = "model.deleted", "Model deleted"
    BUDGET_CHANGED = "budget.changed", "Budget set or changed"
    BUDGET_DELETED = "budget.deleted", "Budget deleted"
    PRICE_CREATED = "price.created", "Compute price set"
    COLLECTION_CREATED = "collection.created", "Data collection created"
    COLLECTION_ACL_CHANGED = "collection.acl_changed", "Data collection's read permission changed"
    COLLECTION_DELETED = "collection.deleted", "Data collection deleted"
    DATA_DELETED = "data.deleted", "Hosted file or directory deleted"
    CONNECTOR_CREATED = "connector.created", "Data connector created"
    CONNECTOR_CHANGED = "connector.changed", "Data connector changed"
    CONNECTOR_DELETED = "connector.deleted", "Data connector deleted"
    CONNECTOR_USED = "connector.used", "Data connector's secret used"
    LOGIN_FAILED = "login.failed", "Log-in failed"
    LOGIN_SUCCEEDED = "login.succeeded", "Logged in"
    LOGIN_THROTTLED = events.LOGIN_THROTTLED, "Log-in refused: too many failed attempts"
    LOGIN_SSO_REQUIRED = (
        events.LOGIN_SSO_REQUIRED,
        "Password log-in refused: the team requires company sign-on",
    )
    SSO_USER_CREATED = events.SSO_USER_CREATED, "Account created at first company sign-on"
    SSO_FAILED = events.SSO_FAILED, "Company sign-on failed"
    SSO_DEPROVISIONED = events.SSO_DEPROVISIONED, "Signed-on user locked out"
    SSO_MAPPING_CREATED = events.SSO_MAPPING_CREATED, "Sign-on group mapped to a team"
    SSO_MAPPING_DELETED = events.SSO_MAPPING_DELETED, "Sign-on group mapping removed"


class Via(models.TextChoices):
    SESSION = "session", "Browser session"
    KEY = "key", "API key"
    SYSTEM = "system", "System (command line, task)"
    ANONYMOUS = "anonymous", "Not signed in"


class AuditEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=64)

    # Who: the user (kept as a name when the account is deleted), and through what.
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=16, choices=Via.choices)
    key_prefix = models.CharField(max_length=16, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    # The team the action concerns, which is whose admins see it; the slug outlives the team.
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team_slug = models.CharField(max_length=39, blank=True)

    # What it was done to, and the state before and after (never a secret).
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["team", "-at"], name="audit_team_at"),
            models.Index(fields=["action", "-at"], name="audit_action_at"),
            models.Index(fields=["-at"], name="audit_at"),
        ]
        verbose_name = "audit event"

    def __str__(self) -> str:
        who = self.actor_name or "anonymous"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.target_repr}".strip()

    @property
    def action_label(self) -> str:
        try:
            return Action(self.action).label
        except ValueError:
            return self.action

    @property
    def changes(self) -> list[tuple[str, str | None, str | None, bool]]:
        """For display: (field, before, after, changed) for each field named in before or
        after, values as text (None where a side has no value)."""
        before = self.before if isinstance(self.before, dict) else {}
        after = self.after if isinstance(self.after, dict) else {}
        names = sorted(set(before) | set(after))
        return [
            (
                name,
                _as_text(before.get(name)),
                _as_text(after.get(name)),
                self.before is not None
                and self.after is not None
                and before.get(name) != after.get(name),
            )
            for name in names
        ]


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)
