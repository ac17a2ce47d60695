"""Reads of hosted data: resolving a data path to what the actor may see, and listings.

Every lookup goes through `readable_collection`, which answers 404 alike for a collection
that does not exist and one the actor may not read."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Sum

from marketplace.accounts.models import Team
from marketplace.core.errors import InputError, NotFoundError

from .models import Collection, DataEntry, EntryKind, ReadAcl, TeamDataUsage
from .paths import ALGO, MY, DataPath, quoted
from .permissions import DataActor, can_read


def owner_team(actor: DataActor, path: DataPath) -> Team:
    if path.owner == MY:
        team = actor.own_namespace
        if team is None:
            raise NotFoundError("data://.my needs an API key or a signed-in user")
        return team
    team = Team.objects.filter(slug=path.owner).first()
    if team is None:
        raise NotFoundError(f"no such owner {quoted(path.owner)}")
    return team


def models_own_path(actor: DataActor, path: DataPath) -> DataPath:
    """`data://.algo/X/...` as the running model's own collection: `algo.<model>` of the
    model's owner, with X/... inside it (`data://.algo/temp/a.txt` ->
    `data://OWNER/algo.MODEL/temp/a.txt`). Any other path as it is."""
    if path.owner != ALGO:
        return path
    if actor.models_own_collection is None:
        raise NotFoundError(
            "data://.algo is a running model's own collection: only a model has one"
        )
    team = Team.objects.get(pk=actor.running_model_owner_id)
    if path.collection is None:
        return DataPath(team.slug, actor.models_own_collection)
    return DataPath(team.slug, actor.models_own_collection, (path.collection, *path.parts))


def collection_not_found(path: DataPath) -> NotFoundError:
    return NotFoundError(f"no such collection data://{path.owner}/{path.collection}")


def readable_collection(actor: DataActor, path: DataPath) -> Collection:
    team = owner_team(actor, path)
    collection = (
        Collection.objects.select_related("team").filter(team=team, name=path.collection).first()
    )
    if collection is None or not can_read(actor, collection):
        raise collection_not_found(path)
    return collection


def entry_at(collection: Collection, parent: str, name: str) -> DataEntry | None:
    return DataEntry.objects.filter(collection=collection, parent=parent, name=name).first()


@dataclass(frozen=True)
class Found:
    """What a path names: a collection (entry None) or an entry in it."""

    collection: Collection
    entry: DataEntry | None

    @property
    def is_file(self) -> bool:
        return self.entry is not None and self.entry.is_file


def object_get(actor: DataActor, path: DataPath) -> Found:
    collection = readable_collection(actor, path)
    if not path.parts:
        return Found(collection, None)
    entry = entry_at(collection, path.parent, path.name)
    if entry is None:
        raise NotFoundError(f"no such file or directory {quoted(path.uri())}")
    return Found(collection, entry)


# -- listings -----------------------------------------------------------------------------


def encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii").rstrip("=")


def decode_marker(marker: str | None) -> str | None:
    if not marker:
        return None
    try:
        padded = marker + "=" * (-len(marker) % 4)
        name = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        return name.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InputError("marker: not a marker this API gave") from None


@dataclass(frozen=True)
class Page:
    folders: list
    files: list
    marker: str | None


def _page(rows: list, page_size: int, name_of) -> tuple[list, str | None]:
    if len(rows) > page_size:
        rows = rows[:page_size]
        return rows, encode_marker(name_of(rows[-1]))
    return rows, None


def directory_page(
    collection: Collection, parent: str, *, marker: str | None, page_size: int | None = None
) -> Page:
    """One page of a directory's entries in name order, directories and files together;
    `marker` is the one the previous page gave."""
    page_size = page_size or settings.DATA_LIST_PAGE_SIZE
    after = decode_marker(marker)
    rows = DataEntry.objects.filter(collection=collection, parent=parent)
    if after is not None:
        rows = rows.filter(name__gt=after)
    rows, next_marker = _page(list(rows.order_by("name")[: page_size + 1]), page_size, _name)
    return Page(
        folders=[row for row in rows if not row.is_file],
        files=[row for row in rows if row.is_file],
        marker=next_marker,
    )


def _name(row) -> str:
    return row.name


def collections_page(
    actor: DataActor, team: Team, *, marker: str | None, page_size: int | None = None
) -> Page:
    """The owner's collections the actor may read, one page in name order."""
    page_size = page_size or settings.DATA_LIST_PAGE_SIZE
    after = decode_marker(marker)
    rows = Collection.objects.filter(team=team).select_related("team")
    if not actor.principal.is_member(team):
        visible = [ReadAcl.PUBLIC]
        if actor.running_model_owner_id == team.pk:
            visible.append(ReadAcl.MY_ALGORITHMS)
        rows = rows.filter(read_acl__in=visible)
    if after is not None:
        rows = rows.filter(name__gt=after)
    rows, next_marker = _page(list(rows.order_by("name")[: page_size + 1]), page_size, _name)
    return Page(folders=rows, files=[], marker=next_marker)


def quota_of(usage: TeamDataUsage | None) -> int:
    """Bytes the namespace may keep; 0 means no quota."""
    if usage is not None and usage.quota_bytes is not None:
        return usage.quota_bytes
    return settings.DATA_TEAM_QUOTA_BYTES


def usage_of(team: Team) -> TeamDataUsage | None:
    return TeamDataUsage.objects.filter(team=team).first()


def bytes_indexed(team: Team) -> int:
    """What the index says the namespace keeps; its usage row says the same."""
    total = DataEntry.objects.filter(collection__team=team, kind=EntryKind.FILE).aggregate(
        total=Sum("size")
    )["total"]
    return total or 0
