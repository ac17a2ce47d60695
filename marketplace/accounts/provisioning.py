"""Company sign-on, the accounts side: users created at their first sign-in (just in time),
matched by the provider's issuer and subject; memberships brought in line with the groups the
provider reports, at every sign-in and every re-check; group mappings; and locking out a
person who left.

A team named by any GroupMapping gets its signed-on members from the mappings alone: a
signed-on user is a member of such a team exactly when one of their groups maps to it, with
the highest role any of those groups gives (owner > admin > member > billing). Teams no
mapping names are left alone. Every change goes through the audit trail like a change an
administrator makes (member.added, member.role_changed, member.removed)."""

from __future__ import annotations

import re
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.core.errors import AuthorizationError, ConflictError, InputError, NotFoundError
from marketplace.core.sealing import SealBroken, seal, unseal

from . import events, policies, sso
from .models import ApiKey, ExternalIdentity, GroupMapping, Membership, Role, Team, User
from .services import RESERVED_SLUGS, personal_namespace_ensure
from .sso import Identity, SignOnError

REFRESH_TOKEN_PURPOSE = "oidc refresh token"  # noqa: S105 (a purpose label)
ROLE_RANK = {Role.BILLING: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def _username_for(identity: Identity) -> str:
    """A free namespace slug from what the provider calls the person (their preferred
    username or the local part of their e-mail), made valid; a number is added if taken."""
    hint = identity.username_hint.split("@", 1)[0].lower()
    base = re.sub(r"[^a-z0-9-]+", "-", hint).strip("-")
    base = re.sub(r"-{2,}", "-", base)
    if not base or not base[0].isalpha():
        base = f"user-{base}".strip("-")
    base = base[:32].rstrip("-")
    if len(base) < 2:
        base = "user"
    candidate = base
    for _ in range(50):
        if candidate not in RESERVED_SLUGS and not Team.objects.filter(slug=candidate).exists():
            return candidate
        candidate = f"{base}-{secrets.randbelow(10_000)}"
    raise ConflictError("no free user name could be found for this account")


def _desired_roles(groups) -> dict[int, str]:
    desired: dict[int, str] = {}
    for mapping in GroupMapping.objects.filter(group__in=list(groups)):
        current = desired.get(mapping.team_id)
        if current is None or ROLE_RANK[mapping.role] > ROLE_RANK[current]:
            desired[mapping.team_id] = mapping.role
    return desired


def _has_mappings() -> bool:
    return GroupMapping.objects.exists()


@transaction.atomic
def sign_on(identity: Identity) -> User:
    """The user the provider vouched for, created on first sign-in, with their memberships
    brought in line. SignOnError (and no account) for a person no mapped group admits."""
    external = (
        ExternalIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=identity.issuer, subject=identity.subject)
        .first()
    )
    admitted = not _has_mappings() or bool(_desired_roles(identity.groups))
    if external is None:
        if not admitted:
            raise SignOnError(
                "You are not in any group that has access here. Ask your administrator to "
                "add you to one.",
                reason="no_mapped_group",
                status=403,
            )
        user = _create_user(identity)
        external = ExternalIdentity.objects.create(
            user=user, issuer=identity.issuer, subject=identity.subject
        )
    user = external.user
    if not user.is_active:
        raise SignOnError(
            "Your account here is locked. Ask a platform administrator to unlock it.",
            reason="account_locked",
            status=403,
        )
    if not admitted:
        lock_out(user, actor=None, reason="no mapped group at sign-in")
        raise SignOnError(
            "You are no longer in any group that has access here, so your access has ended.",
            reason="no_mapped_group",
            status=403,
        )
    _remember(external, identity)
    sync_memberships(user, identity.groups)
    return user


def _create_user(identity: Identity) -> User:
    user = User(username=_username_for(identity), email=identity.email)
    first, _, last = identity.name.partition(" ")
    user.first_name, user.last_name = first[:150], last[:150]
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
            personal = personal_namespace_ensure(user=user)
    except IntegrityError:
        raise ConflictError("this account was created at the same moment; sign in again") from None
    events.announce(
        events.SSO_USER_CREATED,
        actor=user,
        target=user,
        team=personal,
        after={"username": user.username, "issuer": identity.issuer, "subject": identity.subject},
    )
    return user


def _remember(external: ExternalIdentity, identity: Identity) -> None:
    external.groups = list(identity.groups)
    if identity.refresh_token:
        external.sealed_refresh_token = seal(identity.refresh_token, purpose=REFRESH_TOKEN_PURPOSE)
    external.checked_at = timezone.now()
    external.save(update_fields=["groups", "sealed_refresh_token", "checked_at"])


def sync_memberships(user: User, groups) -> None:
    """Add, change and remove `user`'s memberships of mapped teams to match `groups`."""
    desired = _desired_roles(groups)
    mapped_teams = set(GroupMapping.objects.values_list("team_id", flat=True))
    current = {
        membership.team_id: membership
        for membership in Membership.objects.select_related("team").filter(
            user=user, team_id__in=mapped_teams
        )
    }
    details = {"username": user.username, "by": "company sign-on", "groups": sorted(groups)}
    for team in Team.objects.filter(pk__in=set(desired) - set(current)):
        membership = Membership.objects.create(team=team, user=user, role=desired[team.pk])
        events.announce(
            events.MEMBER_ADDED,
            actor=user,
            target=membership,
            team=team,
            after={**details, "role": membership.role},
        )
    for team_id, membership in current.items():
        role = desired.get(team_id)
        if role is None:
            _remove(membership, details)
        elif role != membership.role:
            previous, membership.role = membership.role, role
            membership.save(update_fields=["role"])
            events.announce(
                events.MEMBER_ROLE_CHANGED,
                actor=user,
                target=membership,
                team=membership.team,
                before={"username": user.username, "role": previous},
                after={**details, "role": role},
            )
    policies.forget_roles(user)


def _remove(membership: Membership, details: dict) -> None:
    events.announce(
        events.MEMBER_REMOVED,
        actor=membership.user,
        target=membership,
        team=membership.team,
        before={"username": membership.user.username, "role": membership.role},
        after=details,
    )
    _revoke_keys(ApiKey.objects.filter(created_by=membership.user, team=membership.team))
    membership.delete()


def _revoke_keys(keys) -> None:
    now = timezone.now()
    for key in keys.filter(revoked_at__isnull=True).select_related("team"):
        key.revoked_at = now
        key.save(update_fields=["revoked_at"])
        events.announce(
            events.KEY_REVOKED,
            actor=key.created_by,
            target=key,
            team=key.team,
            before={"revoked_at": None},
            after={"revoked_at": now, "by": "company sign-on lock-out"},
        )


@transaction.atomic
def lock_out(user: User, *, actor: User | None, reason: str) -> User:
    """End a signed-on person's access at once: every session (the account is disabled and
    its session hash changes), every API key they created (revoked), and their memberships
    of mapped teams. Only platform staff unlock the account (is_active in the admin)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    mapped_teams = GroupMapping.objects.values_list("team_id", flat=True)
    for membership in Membership.objects.select_related("team", "user").filter(
        user=user, team_id__in=mapped_teams
    ):
        _remove(membership, {"username": user.username, "by": "company sign-on lock-out"})
    _revoke_keys(ApiKey.objects.filter(created_by=user))
    was_active = user.is_active
    user.is_active = False
    user.set_unusable_password()  # a new session hash: no session of theirs stays valid
    user.save(update_fields=["is_active", "password"])
    ExternalIdentity.objects.filter(user=user).update(sealed_refresh_token="")
    policies.forget_roles(user)
    events.announce(
        events.SSO_DEPROVISIONED,
        actor=actor,
        target=user,
        team=Team.objects.filter(personal_owner=user).first(),
        before={"active": was_active},
        after={"active": False, "reason": reason},
    )
    return user


def deprovision_member(*, actor: User, team: Team, username: str) -> User:
    """A team's owner or admin locks out a member who signs in through company sign-on."""
    if not policies.can_administer(actor, team):
        raise AuthorizationError("Only the team's owners and admins can deprovision its members")
    membership = (
        Membership.objects.select_related("user").filter(team=team, user__username=username).first()
    )
    if membership is None:
        raise NotFoundError(f"username: {username!r} is not a member of {team.slug}")
    if membership.user_id == actor.pk:
        raise InputError("You cannot deprovision yourself")
    if not ExternalIdentity.objects.filter(user=membership.user).exists():
        raise InputError(
            f"{username} does not sign in through company sign-on; remove them from the team "
            "instead"
        )
    # The trail of the team it was done from shows it, besides the user's own.
    events.announce(
        events.SSO_DEPROVISIONED,
        actor=actor,
        target=membership.user,
        team=team,
        after={"username": username, "requested_from": team.slug},
    )
    return lock_out(membership.user, actor=actor, reason=f"deprovisioned by {actor.username}")


def record_failure(error: SignOnError, *, request) -> None:
    events.announce(
        events.SSO_FAILED,
        request=request,
        target_type="user",
        target_id="",
        target_repr="",
        after={"reason": error.reason, "status": error.status},
    )


def password_sign_in_refusal(user: User) -> Team | None:
    """The team that forbids `user` a password log-in, if any."""
    return Team.objects.filter(memberships__user=user, require_sso=True).first()


# -- group mappings (platform staff) -------------------------------------------------------


def _require_staff(actor: User) -> None:
    if not (actor.is_staff or actor.is_superuser):
        raise AuthorizationError("Only platform staff manage sign-on group mappings")


@transaction.atomic
def mapping_create(*, actor: User, group: str, team_slug: str, role: str) -> GroupMapping:
    _require_staff(actor)
    group = (group or "").strip()
    if not group or len(group) > 255:
        raise InputError(
            "group: give the group's name as the provider sends it (1 to 255 characters)"
        )
    if role not in Role.values:
        raise InputError(f"role: must be one of {', '.join(Role.values)}")
    team = Team.objects.filter(slug=(team_slug or "").strip(), is_personal=False).first()
    if team is None:
        raise NotFoundError(f"team: no team named {team_slug!r}")
    try:
        with transaction.atomic():
            mapping = GroupMapping.objects.create(group=group, team=team, role=role)
    except IntegrityError:
        raise ConflictError(f"{group} is already mapped to {team.slug}") from None
    events.announce(
        events.SSO_MAPPING_CREATED,
        actor=actor,
        target=mapping,
        team=team,
        after={"group": group, "team": team.slug, "role": role},
    )
    return mapping


@transaction.atomic
def mapping_delete(*, actor: User, mapping: GroupMapping) -> None:
    _require_staff(actor)
    events.announce(
        events.SSO_MAPPING_DELETED,
        actor=actor,
        target=mapping,
        team=mapping.team,
        before={"group": mapping.group, "team": mapping.team.slug, "role": mapping.role},
    )
    mapping.delete()


# -- re-checks (the periodic task) -------------------------------------------------------------


def recheck(external: ExternalIdentity) -> str:
    """Ask the provider about one signed-on user again and act on its answer: memberships
    brought in line, or the person locked out when the provider refuses the refresh or no
    mapped group admits them. A provider that cannot be asked changes nothing. Returns what
    happened: "synced", "locked", "unreachable" or "skipped"."""
    user = external.user
    if not user.is_active:
        return "skipped"
    try:
        refresh_token = unseal(external.sealed_refresh_token, purpose=REFRESH_TOKEN_PURPOSE)
    except SealBroken:
        refresh_token = ""
    if not refresh_token:
        lock_out(user, actor=None, reason="no refresh token to re-check with")
        return "locked"
    try:
        identity = sso.recheck(external.subject, refresh_token)
    except sso.RefreshRefused as refused:
        lock_out(user, actor=None, reason=f"the provider refused a refresh ({refused})")
        return "locked"
    except SignOnError:
        return "unreachable"
    with transaction.atomic():
        if _has_mappings() and not _desired_roles(identity.groups):
            lock_out(user, actor=None, reason="no longer in any mapped group")
            return "locked"
        _remember(external, identity)
        sync_memberships(user, identity.groups)
    return "synced"


@transaction.atomic
def team_require_sign_on(*, actor: User, team: Team, required: bool) -> Team:
    """Require (or stop requiring) company sign-on of a team's members. Only someone who signs
    in that way may turn it on, so no administrator locks themselves out by accident."""
    if team.is_personal:
        raise InputError("A personal namespace cannot require company sign-on")
    if not policies.can_administer(actor, team):
        raise AuthorizationError("Only the team's owners and admins can change its sign-on rule")
    if required and not ExternalIdentity.objects.filter(user=actor).exists():
        raise InputError("Sign in through company sign-on yourself before requiring it of the team")
    team = Team.objects.select_for_update().get(pk=team.pk)
    if team.require_sso != required:
        events.announce(
            events.TEAM_CHANGED,
            actor=actor,
            target=team,
            team=team,
            before={"require_sso": team.require_sso},
            after={"require_sso": required},
        )
        team.require_sso = required
        team.save(update_fields=["require_sso"])
    return team
