"""Who may read and write hosted data.

A `DataActor` is who acts: the request's principal, and, when the request comes from a
model running for that principal, the namespace that owns the model
(`running_model_owner_id`), which the model's call credential sets on the request
(gateway/call_credentials.py).

- Read: the owner's members; anyone for a public collection; for a `my_algos` collection
  (the default), also the owner's models while they run.
- Write (files, directories, collections, permissions): the owner's members who may publish
  (owner, admin, member; not billing), or a key of the owner's namespace.

A collection the actor may not read is answered exactly like one that does not exist (404),
so private names do not leak. Once a collection is readable, a write the actor may not do
is a 403.

An API key needs a data scope as well (`require_data_scope`): `data:read` to read,
`data:write` to write (it reads too). A browser session has every scope."""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.accounts import policies
from marketplace.accounts.models import Team
from marketplace.accounts.principals import Principal
from marketplace.accounts.scopes import DATA_READ, DATA_WRITE, allows_data
from marketplace.core.errors import AuthorizationError

from .models import Collection, ReadAcl


@dataclass(frozen=True)
class DataActor:
    principal: Principal
    running_model_owner_id: int | None = None
    # The running model's slug: its own collection (`data://.algo/...`) is
    # `algo.<slug>` of its owner.
    running_model_slug: str | None = None

    @classmethod
    def from_request(cls, request) -> DataActor:
        return cls(
            Principal.from_request(request),
            running_model_owner_id=getattr(request, "running_model_owner_id", None),
            running_model_slug=getattr(request, "running_model_slug", None),
        )

    @property
    def models_own_collection(self) -> str | None:
        """The name of the running model's own collection, in its owner's namespace."""
        return f"algo.{self.running_model_slug}" if self.running_model_slug else None

    @property
    def own_namespace(self) -> Team | None:
        """What `.my` means: the key's namespace, or a browser user's personal one."""
        principal = self.principal
        if principal.key is not None:
            return principal.key.team
        return principal.user.personal_team if principal.user is not None else None


def can_read(actor: DataActor, collection: Collection) -> bool:
    if collection.read_acl == ReadAcl.PUBLIC:
        return True
    if actor.principal.is_member(collection.team):
        return True
    return (
        collection.read_acl == ReadAcl.MY_ALGORITHMS
        and actor.running_model_owner_id is not None
        and actor.running_model_owner_id == collection.team_id
    )


def is_models_own(actor: DataActor, team: Team, name: str | None) -> bool:
    """Whether `name` of `team` is the running model's own collection, which the model
    writes whoever it runs for."""
    return (
        actor.models_own_collection is not None
        and actor.running_model_owner_id == team.pk
        and name == actor.models_own_collection
    )


def can_write(actor: DataActor, team: Team) -> bool:
    principal = actor.principal
    if not principal.is_member(team):
        return False
    return principal.team_key or policies.can_publish(principal.user, team)


def require_data_scope(actor: DataActor, *, write: bool) -> None:
    """403 unless the key's scopes allow this kind of data access."""
    if allows_data(actor.principal.scopes, write=write):
        return
    needed = DATA_WRITE if write else f"{DATA_READ} or {DATA_WRITE}"
    what = "write or delete data" if write else "read data"
    raise AuthorizationError(f"This API key may not {what} (it needs the {needed} scope)")
