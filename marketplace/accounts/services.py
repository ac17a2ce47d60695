"""Writes and business rules for users, teams, memberships and API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.core.errors import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    InputError,
    NotFoundError,
)

from . import events, policies, selectors
from .models import (
    NAMESPACE_SLUG_PATTERN,
    ApiKey,
    Membership,
    Role,
    Team,
    User,
    new_signing_secret,
)
from .scopes import InvalidScope, normalise_scopes

# Namespaces share the URL space with the site's own pages and the API.
# The namespace that visitors' anonymous tries are recorded under (no member, no key).
ANONYMOUS_NAMESPACE = "anonymous"

RESERVED_SLUGS = frozenset(
    [
        ANONYMOUS_NAMESPACE,
        "about",
        "accounts",
        "admin",
        "api",
        "app",
        "apps",
        "audit",
        "billing",
        "calls",
        "blog",
        "dashboard",
        "data",
        "docs",
        "explore",
        "help",
        "healthz",
        "home",
        "join",
        "keys",
        "login",
        "logout",
        "media",
        "metrics",
        "models",
        "new",
        "organizations",
        "orgs",
        "pricing",
        "readyz",
        "search",
        "settings",
        "signup",
        "static",
        "status",
        "support",
        "team",
        "teams",
        "terms",
        "user",
        "users",
        "v1",
        "v2",
        "www",
        "marketplace",
        "modelplace",
        "algo",
        "algorithms",
        "root",
        "system",
        "null",
        "none",
        "undefined",
    ]
)

KEY_PREFIX = "mk_"
_ALPHABET = string.ascii_letters + string.digits
_KEY_ID_LENGTH = 8
_KEY_SECRET_LENGTH = 32
KEY_LOOKUP_LENGTH = len(KEY_PREFIX) + _KEY_ID_LENGTH


def _check_namespace_slug(slug: str, *, field: str) -> str:
    slug = (slug or "").strip()
    if not re.match(NAMESPACE_SLUG_PATTERN, slug):
        raise InputError(
            f"{field}: use 2 to 39 characters: lowercase letters, digits and hyphens, "
            "starting with a letter",
            fields={field: ["invalid"]},
        )
    if slug in RESERVED_SLUGS:
        raise InputError(f"{field}: {slug!r} is reserved", fields={field: ["reserved"]})
    if Team.objects.filter(slug=slug).exists():
        raise ConflictError(f"{field}: the name {slug!r} is taken", fields={field: ["taken"]})
    return slug


# -- users ------------------------------------------------------------------------------


@transaction.atomic
def user_sign_up(
    *, username: str, email: str, password: str, is_staff: bool = False, is_superuser: bool = False
) -> User:
    username = _check_namespace_slug(username, field="username")
    user = User(
        username=username, email=email.strip(), is_staff=is_staff, is_superuser=is_superuser
    )
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InputError(
            "password: " + " ".join(exc.messages), fields={"password": exc.messages}
        ) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            personal_namespace_ensure(user=user)
    except IntegrityError:
        raise ConflictError(
            f"username: the name {username!r} is taken", fields={"username": ["taken"]}
        ) from None
    return user


def personal_namespace_ensure(*, user: User) -> Team:
    """Every user owns a personal namespace named like them. Idempotent; also repairs users
    created outside the sign-up path (createsuperuser, the admin site)."""
    team = Team.objects.filter(personal_owner=user).first()
    if team is None:
        team = Team.objects.create(
            slug=user.username,
            name=user.get_full_name() or user.username,
            is_personal=True,
            personal_owner=user,
        )
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.OWNER})
    return team


def anonymous_namespace() -> Team:
    """The namespace of calls made without an account (a public model's anonymous tries):
    their invocations are attributed to it, and nobody is its member. Its slug is reserved,
    so no one can sign up or create a team under it."""
    team, _ = Team.objects.get_or_create(
        slug=ANONYMOUS_NAMESPACE, defaults={"name": "Anonymous visitors", "is_personal": False}
    )
    return team


# -- teams --------------------------------------------------------------------------------


@transaction.atomic
def team_create(*, actor: User, slug: str, name: str, description: str = "") -> Team:
    slug = _check_namespace_slug(slug, field="slug")
    name = (name or "").strip() or slug
    try:
        with transaction.atomic():
            team = Team.objects.create(slug=slug, name=name[:100], description=description)
            Membership.objects.create(team=team, user=actor, role=Role.OWNER)
            events.announce(
                events.TEAM_CREATED,
                actor=actor,
                target=team,
                team=team,
                after={"slug": team.slug, "name": team.name},
            )
    except IntegrityError:
        raise ConflictError(
            f"slug: the name {slug!r} is taken", fields={"slug": ["taken"]}
        ) from None
    policies.forget_roles(actor)
    return team


def team_update(
    *, actor: User, team: Team, name: str | None = None, description: str | None = None
) -> Team:
    if not policies.can_administer(actor, team):
        raise AuthorizationError("Only the team's owners and admins can change it")
    before = {"name": team.name, "description": team.description}
    if name is not None:
        if not name.strip():
            raise InputError("name: must not be empty", fields={"name": ["required"]})
        team.name = name.strip()[:100]
    if description is not None:
        team.description = description
    with transaction.atomic():
        if (team.name, team.description) != (before["name"], before["description"]):
            events.announce(
                events.TEAM_CHANGED,
                actor=actor,
                target=team,
                team=team,
                before=before,
                after={"name": team.name, "description": team.description},
            )
        team.save(update_fields=["name", "description"])
    return team


@transaction.atomic
def team_delete(*, actor: User, team: Team) -> None:
    if team.is_personal:
        raise InputError("A personal namespace cannot be deleted")
    if not policies.is_owner(actor, team):
        raise AuthorizationError("Only the team's owners can delete it")
    # Recorded first, while the team exists; the event keeps its slug after the delete.
    events.announce(
        events.TEAM_DELETED,
        actor=actor,
        target=team,
        team=team,
        before={"slug": team.slug, "name": team.name},
    )
    team.delete()


def team_rotate_signing_secret(*, team: Team, actor: User) -> Team:
    """Replace the namespace's webhook signing secret with a new random one: every webhook
    sent after this is signed with it, and the old one no longer verifies anything. The
    audit event says that it happened, never what either secret is."""
    if not policies.can_administer(actor, team):
        raise AuthorizationError("Only the namespace's owners and admins can rotate it")
    team.signing_secret = new_signing_secret()
    with transaction.atomic():
        team.save(update_fields=["signing_secret"])
        events.announce(events.TEAM_SIGNING_SECRET_ROTATED, actor=actor, target=team, team=team)
    return team


# -- memberships ------------------------------------------------------------------------------


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise InputError(
            f"role: must be one of {', '.join(Role.values)}", fields={"role": ["invalid"]}
        )
    return role


def _owner_count(team: Team) -> int:
    return Membership.objects.filter(team=team, role=Role.OWNER).count()


def _require_can_manage(actor: User, team: Team, *, touching_owner: bool) -> None:
    if team.is_personal:
        raise InputError("A personal namespace has exactly one member; create a team instead")
    if not policies.can_administer(actor, team):
        raise AuthorizationError("Only the team's owners and admins can manage its members")
    if touching_owner and not policies.is_owner(actor, team):
        raise AuthorizationError("Only owners can make, change or remove owners")


@transaction.atomic
def membership_add(
    *, actor: User, team: Team, username: str, role: str = Role.MEMBER
) -> Membership:
    role = _check_role(role)
    _require_can_manage(actor, team, touching_owner=role == Role.OWNER)
    user = User.objects.filter(username=(username or "").strip().lower(), is_active=True).first()
    if user is None:
        raise NotFoundError(f"username: no user named {username!r}")
    membership, created = Membership.objects.get_or_create(
        team=team, user=user, defaults={"role": role}
    )
    if not created:
        raise ConflictError(f"{user.username} is already a member of {team.slug}")
    events.announce(
        events.MEMBER_ADDED,
        actor=actor,
        target=membership,
        team=team,
        after={"username": user.username, "role": role},
    )
    return membership


@transaction.atomic
def membership_change_role(*, actor: User, membership: Membership, role: str) -> Membership:
    role = _check_role(role)
    team = Team.objects.select_for_update().get(pk=membership.team_id)
    touching_owner = role == Role.OWNER or membership.role == Role.OWNER
    _require_can_manage(actor, team, touching_owner=touching_owner)
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(team) <= 1:
        raise ConflictError("A team needs at least one owner; make someone else owner first")
    previous, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    policies.forget_roles(membership.user)
    if previous != role:
        events.announce(
            events.MEMBER_ROLE_CHANGED,
            actor=actor,
            target=membership,
            team=team,
            before={"username": membership.user.username, "role": previous},
            after={"username": membership.user.username, "role": role},
        )
    return membership


@transaction.atomic
def membership_remove(*, actor: User, membership: Membership) -> None:
    team = Team.objects.select_for_update().get(pk=membership.team_id)
    leaving = membership.user_id == actor.pk
    if not leaving:
        _require_can_manage(actor, team, touching_owner=membership.role == Role.OWNER)
    elif team.is_personal:
        raise InputError("You cannot leave your personal namespace")
    if membership.role == Role.OWNER and _owner_count(team) <= 1:
        raise ConflictError("A team needs at least one owner; make someone else owner first")
    events.announce(
        events.MEMBER_REMOVED,
        actor=actor,
        target=membership,
        team=team,
        before={"username": membership.user.username, "role": membership.role},
        after={"left": leaving},
    )
    membership.delete()
    policies.forget_roles(membership.user)


# -- API keys -----------------------------------------------------------------------------------


def hash_secret(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _new_raw_key() -> str:
    ident = "".join(secrets.choice(_ALPHABET) for _ in range(_KEY_ID_LENGTH))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(_KEY_SECRET_LENGTH))
    return f"{KEY_PREFIX}{ident}{secret}"


@transaction.atomic
def api_key_create(
    *,
    actor: User,
    team: Team | None = None,
    name: str,
    scopes: list[str],
    project: str = "",
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never available again."""
    team = team or personal_namespace_ensure(user=actor)
    if not policies.can_administer(actor, team):
        raise AuthorizationError(f"Only owners and admins of {team.slug} can create keys for it")
    name = (name or "").strip()
    if not name:
        raise InputError("name: give the key a name", fields={"name": ["required"]})
    try:
        scopes = normalise_scopes(scopes)
    except InvalidScope as exc:
        raise InputError(f"scopes: {exc}", fields={"scopes": [str(exc)]}) from None
    project = (project or "").strip()
    if len(project) > 64:
        raise InputError("project: at most 64 characters", fields={"project": ["too long"]})
    if expires_at is not None and expires_at <= timezone.now():
        raise InputError("expires_at: must be in the future", fields={"expires_at": ["past"]})
    for _attempt in range(5):
        raw_key = _new_raw_key()
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    team=team,
                    created_by=actor,
                    name=name[:100],
                    prefix=raw_key[:KEY_LOOKUP_LENGTH],
                    secret_hash=hash_secret(raw_key),
                    scopes=scopes,
                    project=project,
                    expires_at=expires_at,
                )
        except IntegrityError:  # a prefix collision: astronomically rare, just draw again
            continue
        events.announce(
            events.KEY_CREATED,
            actor=actor,
            target=key,
            team=team,
            after={
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scopes,
                "project": key.project,
                "expires_at": key.expires_at,
            },
        )
        return key, raw_key
    raise ConflictError("could not allocate a unique key; try again")


@transaction.atomic
def api_key_revoke(*, actor: User, key: ApiKey) -> ApiKey:
    if key.created_by_id != actor.pk and not policies.can_administer(actor, key.team):
        raise NotFoundError("No such API key")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        events.announce(
            events.KEY_REVOKED,
            actor=actor,
            target=key,
            team=key.team,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at},
        )
    return key


def api_key_authenticate(raw_key: str) -> ApiKey:
    """The key for a raw secret, or AuthenticationError saying why it is not accepted."""
    raw_key = (raw_key or "").strip()
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) != KEY_LOOKUP_LENGTH + _KEY_SECRET_LENGTH:
        raise AuthenticationError("Invalid API key")
    key = selectors.api_key_by_prefix(raw_key[:KEY_LOOKUP_LENGTH])
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(raw_key)):
        raise AuthenticationError("Invalid API key")
    if key.is_revoked:
        raise AuthenticationError("This API key has been revoked")
    if key.is_expired:
        raise AuthenticationError("This API key has expired")
    if not key.created_by.is_active:
        raise AuthenticationError("The account that owns this API key is disabled")
    _touch_last_used(key)
    return key


# Key id -> when this process last wrote its last use: the key's row may be remembered
# (core/change_feed.py) from before that write, which is not announced.
_last_used_written: dict = {}


def _touch_last_used(key: ApiKey) -> None:
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    last = max(filter(None, (key.last_used_at, _last_used_written.get(key.pk))), default=None)
    if last is None or now - last >= resolution:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        if len(_last_used_written) > 100_000:
            _last_used_written.clear()
        _last_used_written[key.pk] = now
        last = now
    key.last_used_at = last
