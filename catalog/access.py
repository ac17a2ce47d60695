"""Who may see and change what in the catalogue."""

from __future__ import annotations

from marketplace.accounts import policies
from marketplace.accounts.models import Team, User
from marketplace.core.errors import AuthorizationError, NotFoundError

from .models import Model, Visibility


def require_publish(actor: User, owner: Team) -> None:
    if not policies.can_publish(actor, owner):
        if policies.is_member(actor, owner):
            raise AuthorizationError(f"Your role in {owner.slug} cannot publish models")
        raise AuthorizationError(f"You cannot publish models as {owner.slug}")


def is_member(user, team: Team) -> bool:
    return bool(user and user.is_authenticated and policies.is_member(user, team))


def can_view(user, model: Model) -> bool:
    return model.visibility == Visibility.PUBLIC or is_member(user, model.owner)


def require_view(user, model: Model) -> None:
    if not can_view(user, model):
        raise NotFoundError(f"No model named {model.full_name}")


def require_owner(user, model: Model) -> None:
    """Builds, logs and unpublished things are for the owner namespace's members only; to
    anyone else they do not exist."""
    if not is_member(user, model.owner):
        raise NotFoundError(f"No model named {model.full_name}")
