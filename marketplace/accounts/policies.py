"""Who may do what to a team. Pure functions of a user's role, used by services and views."""

from __future__ import annotations

from marketplace.core.change_feed import TableCache

from .models import Membership, Role, Team, User

ADMIN_ROLES = {Role.OWNER, Role.ADMIN}
BILLING_ROLES = {Role.OWNER, Role.ADMIN, Role.BILLING}
PUBLISH_ROLES = {Role.OWNER, Role.ADMIN, Role.MEMBER}


def role_of(user: User, team: Team) -> str | None:
    if not user.is_authenticated:
        return None
    cache = getattr(user, "_team_roles", None)
    if cache is None:
        cache = user._team_roles = {}
    if team.pk not in cache:
        cache[team.pk] = _roles.get((user.pk, team.pk), lambda: _role_in_database(user, team))
    return cache[team.pk]


_roles = TableCache("roles", {"accounts_membership"}, max_entries=16384)


def _role_in_database(user: User, team: Team) -> str | None:
    return Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()


def forget_roles(user: User) -> None:
    if hasattr(user, "_team_roles"):
        del user._team_roles


def is_member(user: User, team: Team) -> bool:
    return role_of(user, team) is not None


def can_administer(user: User, team: Team) -> bool:
    return role_of(user, team) in ADMIN_ROLES


def is_owner(user: User, team: Team) -> bool:
    return role_of(user, team) == Role.OWNER


def can_read_billing(user: User, team: Team) -> bool:
    return role_of(user, team) in BILLING_ROLES


def can_publish(user: User, team: Team) -> bool:
    return role_of(user, team) in PUBLISH_ROLES
