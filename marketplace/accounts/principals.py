"""Who is acting on a request: a browser session (a user with every permission their roles
give), a personal key (the user, narrowed by the key's scopes) or a team key (the team,
narrowed by the key's scopes, and never more than that team)."""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.core.errors import AuthorizationError

from . import policies
from .models import ApiKey, Team, User
from .scopes import FULL_ACCESS


@dataclass(frozen=True)
class Principal:
    user: User | None
    key: ApiKey | None = None

    @classmethod
    def from_request(cls, request) -> Principal:
        user = request.user if request.user.is_authenticated else None
        key = request.auth if isinstance(getattr(request, "auth", None), ApiKey) else None
        return cls(user, key)

    @property
    def scopes(self) -> list[str]:
        return list(self.key.scopes) if self.key else list(FULL_ACCESS)

    @property
    def team_key(self) -> bool:
        return self.key is not None and not self.key.team.is_personal

    def is_member(self, team: Team) -> bool:
        if self.user is None:
            return False
        if self.team_key:
            return self.key.team_id == team.pk
        return policies.is_member(self.user, team)

    def require_scope(self, scope: str, what: str) -> None:
        if scope not in self.scopes:
            raise AuthorizationError(f"This API key may not {what} (it lacks the {scope} scope)")

    def require_acts_for(self, team: Team) -> None:
        if self.team_key and self.key.team_id != team.pk:
            raise AuthorizationError(
                f"This key belongs to {self.key.team.slug} and cannot act for {team.slug}"
            )
