"""Users, namespaces (personal and team), memberships with roles, and API keys.

Every user has a personal namespace and every team is one: both are rows of Team, so
models, keys and usage always belong to a Team, and user names and team slugs share one
slug space by construction (Team.slug is unique).
"""

from __future__ import annotations

import secrets
import uuid

from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

NAMESPACE_SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,38}$"
namespace_slug_validator = RegexValidator(
    NAMESPACE_SLUG_PATTERN,
    "Use 2 to 39 characters: lowercase letters, digits and hyphens, starting with a letter.",
)


class User(AbstractUser):
    username = models.CharField(
        max_length=39,
        unique=True,
        validators=[namespace_slug_validator],
        help_text="Also your personal namespace: lowercase letters, digits and hyphens.",
        error_messages={"unique": "That name is taken."},
    )

    @property
    def personal_team(self) -> Team | None:
        return Team.objects.filter(personal_owner=self).first()


def new_signing_secret() -> str:
    """256 random bits, in hex: what a namespace signs its outgoing webhooks with."""
    return secrets.token_hex(32)


class Team(models.Model):
    slug = models.CharField(max_length=39, unique=True, validators=[namespace_slug_validator])
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    is_personal = models.BooleanField(default=False)
    personal_owner = models.OneToOneField(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(User, through="Membership", related_name="teams")
    # Signs the namespace's invocation webhooks and budget alerts (X-Marketplace-Signature).
    # Random and stored, so knowing SECRET_KEY or the team's id does not give it; admins
    # read it and rotate it (accounts.services.team_rotate_signing_secret).
    signing_secret = models.CharField(max_length=64, default=new_signing_secret, editable=False)
    # How long the inputs and outputs its callers asked to keep are kept (gateway.call_bodies).
    call_body_retention_days = models.PositiveSmallIntegerField(
        default=7, db_default=7, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    # Its members sign in through the company's identity provider only (marketplace/accounts/
    # sso.py): password log-in is refused for them.
    require_sso = models.BooleanField(default=False)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_personal=False, personal_owner__isnull=True)
                | models.Q(is_personal=True, personal_owner__isnull=False),
                name="team_personal_has_owner",
            ),
            # Whatever writes the row (a service, the admin, a shell): a slug never holds
            # `_`, so a namespace's client alias (`-` written `_`, namespaces.py) names it
            # and no other.
            models.CheckConstraint(
                condition=models.Q(slug__regex=NAMESPACE_SLUG_PATTERN),
                name="team_slug_is_a_namespace_slug",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    BILLING = "billing", "Billing"


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__slug", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class ApiKey(models.Model):
    """The secret is never stored: only its SHA-256 (secrets are 190 random bits, so a plain
    hash is enough) and a short public prefix to find the row and show in lists."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    created_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, blank=True)
    project = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Keep the inputs and outputs of this key's calls (a call's keep_io parameter overrides).
    keep_call_bodies = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired


class ExternalIdentity(models.Model):
    """Who a user is at the company's identity provider: its issuer and subject (an e-mail is
    never enough to match an account), the groups it last said they are in, and the refresh
    token the platform re-checks them with (sealed: marketplace.core.sealing)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="external_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    groups = models.JSONField(default=list, blank=True)
    sealed_refresh_token = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="identity_issuer_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.issuer}"


class GroupMapping(models.Model):
    """A group at the identity provider that makes its members members of `team` with `role`.
    A team named by any mapping gets its company-signed-on members from the mappings alone."""

    group = models.CharField(max_length=255)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="group_mappings")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group", "team__slug"]
        constraints = [
            models.UniqueConstraint(fields=["group", "team"], name="group_mapping_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.group} -> {self.team} ({self.role})"
