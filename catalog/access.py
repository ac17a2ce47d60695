"""Who may change what in the catalogue. (Who may see what is decided in the queries
themselves: catalog.selectors and marketplace.accounts.principals.)"""

from __future__ import annotations

from marketplace.accounts import policies
from marketplace.accounts.models import Team, User
from marketplace.core.errors import AuthorizationError


def require_publish(actor: User, owner: Team) -> None:
    if not policies.can_publish(actor, owner):
        if policies.is_member(actor, owner):
            raise AuthorizationError(f"Your role in {owner.slug} cannot publish models")
        raise AuthorizationError(f"You cannot publish models as {owner.slug}")
