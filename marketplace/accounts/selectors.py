"""Reads for accounts: what a user may see of teams, memberships and keys."""

from __future__ import annotations

import uuid

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from marketplace.core.change_feed import TableCache, frozen, thawed
from marketplace.core.errors import NotFoundError

from .models import ApiKey, ExternalIdentity, GroupMapping, Membership, Team, User
from .policies import ADMIN_ROLES

_keys_by_prefix = TableCache(
    "api keys", {"accounts_apikey", "accounts_team", "accounts_user"}, max_entries=16384
)


def api_key_by_prefix(prefix: str) -> ApiKey | None:
    """The key with this public prefix, with its team and creator, or None. Each call gets
    its own instances (the rows may be remembered, see core/change_feed.py)."""

    def load():
        key = ApiKey.objects.select_related("team", "created_by").filter(prefix=prefix).first()
        return frozen(key, "team", "created_by") if key is not None else None

    snapshot = _keys_by_prefix.get(prefix, load)
    return thawed(snapshot) if snapshot is not None else None


def teams_for_user(user: User, *, include_personal: bool = True) -> QuerySet[Team]:
    role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
    teams = (
        Team.objects.filter(memberships__user=user)
        .annotate(my_role=Subquery(role), member_count=Count("memberships", distinct=True))
        .order_by("-is_personal", "slug")
    )
    if not include_personal:
        teams = teams.filter(is_personal=False)
    return teams


def team_for_member(user: User, slug: str) -> Team:
    """The team, to one of its members; to anyone else it does not exist."""
    team = teams_for_user(user).filter(slug=slug).first()
    if team is None:
        raise NotFoundError(f"No team named {slug!r}")
    return team


def teams_for_principal(principal) -> QuerySet[Team]:
    """The teams a request may see: the user's, or only its own for a team key (a team key
    acts for its team and never more, whatever else its holder belongs to)."""
    teams = teams_for_user(principal.user)
    if principal.team_key:
        teams = teams.filter(pk=principal.key.team_id)
    return teams


def team_for_principal(principal, slug: str) -> Team:
    """team_for_member for a request: to a team key, other teams do not exist."""
    team = teams_for_principal(principal).filter(slug=slug).first()
    if team is None:
        raise NotFoundError(f"No team named {slug!r}")
    return team


def team_signing_secret(team_id) -> str:
    """The secret a namespace's outgoing webhooks (invocations, budget alerts) are signed
    with, read afresh so that a webhook sent after a rotation carries the new one."""
    return Team.objects.values_list("signing_secret", flat=True).get(pk=team_id)


def team_memberships(team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("role", "user__username")


def membership_get(team: Team, username: str) -> Membership:
    membership = team_memberships(team).filter(user__username=username).first()
    if membership is None:
        raise NotFoundError(f"{username!r} is not a member of {team.slug}")
    return membership


def teams_user_administers(user: User) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user, memberships__role__in=ADMIN_ROLES).order_by(
        "-is_personal", "slug"
    )


def api_keys_visible_to(user: User) -> QuerySet[ApiKey]:
    """Keys the user made, and every key of a team they administer."""
    return (
        ApiKey.objects.filter(
            Q(created_by=user)
            | Q(team__memberships__user=user, team__memberships__role__in=ADMIN_ROLES)
        )
        .select_related("team", "created_by")
        .distinct()
        .order_by("revoked_at", "-created_at")
    )


def api_key_get(user: User, key_id) -> ApiKey:
    try:
        key_id = uuid.UUID(str(key_id))
    except ValueError:
        raise NotFoundError("No such API key") from None
    key = api_keys_visible_to(user).filter(pk=key_id).first()
    if key is None:
        raise NotFoundError("No such API key")
    return key


def group_mappings() -> QuerySet[GroupMapping]:
    return GroupMapping.objects.select_related("team").order_by("group", "team__slug")


def group_mapping_get(mapping_id) -> GroupMapping:
    mapping_id = str(mapping_id)
    mapping = (
        GroupMapping.objects.select_related("team").filter(pk=int(mapping_id)).first()
        if mapping_id.isdigit()
        else None
    )
    if mapping is None:
        raise NotFoundError("No such group mapping")
    return mapping


def signed_on_user_ids(team: Team) -> set[int]:
    """The members of `team` who sign in through company sign-on."""
    return set(
        ExternalIdentity.objects.filter(user__memberships__team=team).values_list(
            "user_id", flat=True
        )
    )
