"""Writes of hosted data: collections, their read permission, directories, files and
deletes, each keeping the index, the namespace's usage and the audit trail in step.

Every write of a namespace's data first locks its `TeamDataUsage` row (`_locked_usage`), so
the writes of one namespace are counted one after another: two uploads racing for the last
bytes of a quota cannot both get them, and an overwrite gives back the old size in the same
step. File contents are streamed to the storage under a new key *before* that short
transaction; if the transaction refuses (quota, a conflict, the collection gone), the new
blob is deleted, and a replaced or deleted blob is removed only after the commit."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from marketplace.accounts.models import Team
from marketplace.audit.models import Action
from marketplace.audit.services import audit_record
from marketplace.core.errors import (
    AuthorizationError,
    ConflictError,
    InputError,
    NotFoundError,
    RequestTooLargeError,
)

from . import selectors
from .models import ACL_STRINGS, Collection, DataEntry, EntryKind, ReadAcl, TeamDataUsage
from .paths import DataPath, collection_name, entry_name, quoted
from .permissions import DataActor, can_read, can_write, is_models_own
from .storage import Storage, configured_storage

logger = logging.getLogger(__name__)


class QuotaExceededError(RequestTooLargeError):
    error_type = "QuotaExceededError"
    default_message = "The namespace's hosted data quota is used up"


class LimitedReader:
    """Reads `source` and raises `error()` as soon as more than `limit` bytes came."""

    def __init__(self, source: BinaryIO, limit: int, error: Callable[[], Exception]):
        self.source = source
        self.limit = limit
        self.error = error
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.limit + 1 - self.count
        chunk = self.source.read(max(0, min(size, self.limit + 1 - self.count)) or 1)
        self.count += len(chunk)
        if self.count > self.limit:
            raise self.error()
        return chunk


# -- shared steps -------------------------------------------------------------------------


def _locked_usage(team: Team) -> TeamDataUsage:
    TeamDataUsage.objects.bulk_create([TeamDataUsage(team=team)], ignore_conflicts=True)
    return TeamDataUsage.objects.select_for_update().get(team=team)


def _require_write(actor: DataActor, collection: Collection | None, team: Team) -> None:
    if can_write(actor, team):
        return
    if collection is not None and is_models_own(actor, team, collection.name):
        return
    if collection is not None and can_read(actor, collection):
        raise AuthorizationError(
            f"you may read data://{team.slug}/{collection.name}, not change it"
        )
    raise AuthorizationError(f"you may not write to data://{team.slug}")


def _writable_collection(actor: DataActor, path: DataPath) -> Collection:
    team = selectors.owner_team(actor, path)
    if is_models_own(actor, team, path.collection):
        # Made on the model's first write: owner only, and the owner's models.
        Collection.objects.get_or_create(
            team=team, name=path.collection, defaults={"read_acl": ReadAcl.MY_ALGORITHMS}
        )
    collection = selectors.readable_collection(actor, path)
    _require_write(actor, collection, collection.team)
    return collection


def _delete_blobs_after_commit(storage: Storage, keys: list[str]) -> None:
    def delete():
        for key in keys:
            try:
                storage.delete(key)
            except Exception:
                # Left behind, never reachable through the index: logged for the operator.
                logger.exception("could not delete data blob %s", key)

    if keys:
        transaction.on_commit(delete)


def storage_key_for(collection: Collection) -> str:
    """A new, platform-made key: no caller-written name ever reaches the storage."""
    return f"{collection.team_id}/{collection.pk}/{uuid.uuid4().hex}"


def acl_from_api(value) -> ReadAcl:
    """Algorithmia's `{"read": [...]}` (Algorithmia/acl.py) as a ReadAcl."""
    if not isinstance(value, dict) or not isinstance(value.get("read"), list):
        raise InputError(
            'acl: expected {"read": []}, {"read": ["algo://.my/*"]} or {"read": ["user://*"]}'
        )
    for acl, strings in ACL_STRINGS.items():
        if value["read"] == strings:
            return ReadAcl(acl)
    raise InputError(
        f"acl: unsupported read permission {quoted(str(value['read']))}: use [] (private), "
        '["algo://.my/*"] (your models) or ["user://*"] (public)'
    )


def _audit_target(collection: Collection, path: str = "") -> dict:
    uri = f"data://{collection.team.slug}/{collection.name}" + (f"/{path}" if path else "")
    return {
        "target_type": "collection" if not path else "data",
        "target_id": str(collection.pk),
        "target_repr": uri,
    }


# -- collections and directories ---------------------------------------------------------


@transaction.atomic
def collection_create(*, actor: DataActor, path: DataPath, name: str, acl=None) -> Collection:
    """Create the collection `name` under the owner `path` names."""
    team = selectors.owner_team(actor, path)
    _require_write(actor, None, team)
    actor.principal.require_acts_for(team)
    name = collection_name(name)
    read_acl = acl_from_api(acl) if acl is not None else ReadAcl.MY_ALGORITHMS
    _locked_usage(team)
    if Collection.objects.filter(team=team, name=name).exists():
        raise ConflictError(f"data://{team.slug}/{name} already exists")
    try:
        with transaction.atomic():
            collection = Collection.objects.create(
                team=team, name=name, read_acl=read_acl, created_by=actor.principal.user
            )
    except IntegrityError:
        raise ConflictError(f"data://{team.slug}/{name} already exists") from None
    audit_record(
        action=Action.COLLECTION_CREATED,
        team=team,
        principal=actor.principal,
        after={"name": name, "read": read_acl},
        **_audit_target(collection),
    )
    return collection


@transaction.atomic
def directory_create(*, actor: DataActor, path: DataPath, name: str) -> DataEntry:
    """Create the directory `name` inside the collection or directory `path` names."""
    collection = _writable_collection(actor, path)
    name = entry_name(name)
    _locked_usage(collection.team)
    if path.parts:
        parent = selectors.entry_at(collection, path.parent, path.name)
        if parent is None or parent.is_file:
            raise NotFoundError(f"no such directory {quoted(path.uri())}")
    existing = selectors.entry_at(collection, path.relative, name)
    if existing is not None:
        raise ConflictError(f"{quoted(path.uri() + '/' + name)} already exists")
    return DataEntry.objects.create(
        collection=collection, parent=path.relative, name=name, kind=EntryKind.DIRECTORY
    )


@transaction.atomic
def collection_set_acl(*, actor: DataActor, path: DataPath, acl) -> Collection:
    collection = _writable_collection(actor, path)
    if path.parts:
        raise InputError(
            f"permissions belong to collections: set them on data://{path.owner}/{path.collection}"
        )
    read_acl = acl_from_api(acl)
    collection = Collection.objects.select_for_update().get(pk=collection.pk)
    before = collection.read_acl
    if before != read_acl:
        collection.read_acl = read_acl
        collection.save(update_fields=["read_acl"])
        audit_record(
            action=Action.COLLECTION_ACL_CHANGED,
            team=collection.team,
            principal=actor.principal,
            before={"read": before},
            after={"read": read_acl},
            **_audit_target(collection),
        )
    return collection


# -- files --------------------------------------------------------------------------------


def file_write(
    *, actor: DataActor, path: DataPath, source: BinaryIO, declared_size: int | None
) -> DataEntry:
    """Stream `source` into the file `path` names (created, or replaced whole), creating
    the directories above it inside its collection. 413 over DATA_MAX_FILE_BYTES or the
    namespace's quota."""
    if not path.parts:
        raise InputError("a file lives inside a collection: data://OWNER/COLLECTION/FILE")
    collection = _writable_collection(actor, path)
    team = collection.team
    max_bytes = settings.DATA_MAX_FILE_BYTES

    def too_large():
        return RequestTooLargeError(f"a hosted file is at most {max_bytes:,} bytes")

    if declared_size is not None and declared_size > max_bytes:
        raise too_large()
    # A first look at the quota, to refuse early and bound the stream; the check that
    # counts is the one under the lock below.
    usage = selectors.usage_of(team)
    quota = selectors.quota_of(usage)
    limit, error = max_bytes, too_large
    if quota:
        existing = selectors.entry_at(collection, path.parent, path.name)
        used = usage.bytes_used if usage is not None else 0
        room = max(0, quota - used + (existing.size if existing and existing.is_file else 0))
        if declared_size is not None and declared_size > room:
            raise _quota_error(team, quota, used)
        if room < limit:
            limit, error = room, (lambda: _quota_error(team, quota, used))

    storage = configured_storage()
    key = storage_key_for(collection)
    reader = LimitedReader(source, limit, error)
    storage.save(key, reader)
    try:
        if declared_size is not None and reader.count != declared_size:
            # The client went away (or lied): never keep a cut-off file.
            raise InputError(
                f"the body ended after {reader.count:,} of its {declared_size:,} bytes"
            )
        return _file_record(actor, collection, path, key, reader.count, storage)
    except BaseException:
        with contextlib.suppress(Exception):
            storage.delete(key)
        raise


def _quota_error(team: Team, quota: int, used: int) -> QuotaExceededError:
    return QuotaExceededError(
        f"{team.slug}'s hosted data would be over its quota of {quota:,} bytes "
        f"({used:,} used): delete files or ask for a larger quota"
    )


@transaction.atomic
def _file_record(
    actor: DataActor, collection: Collection, path: DataPath, key: str, size: int, storage
) -> DataEntry:
    team = collection.team
    usage = _locked_usage(team)
    if not Collection.objects.filter(pk=collection.pk).exists():
        raise selectors.collection_not_found(path)
    _ensure_directories(collection, path.parts[:-1], path)
    existing = (
        DataEntry.objects.select_for_update()
        .filter(collection=collection, parent=path.parent, name=path.name)
        .first()
    )
    if existing is not None and not existing.is_file:
        raise ConflictError(f"{quoted(path.uri())} is a directory")
    old_size = existing.size if existing is not None else 0
    total = usage.bytes_used - old_size + size
    quota = selectors.quota_of(usage)
    if quota and total > quota and size > old_size:
        raise _quota_error(team, quota, usage.bytes_used)
    now = timezone.now()
    if existing is None:
        entry = DataEntry.objects.create(
            collection=collection,
            parent=path.parent,
            name=path.name,
            kind=EntryKind.FILE,
            size=size,
            storage_key=key,
            modified_at=now,
        )
    else:
        _delete_blobs_after_commit(storage, [existing.storage_key])
        existing.size, existing.storage_key, existing.modified_at = size, key, now
        existing.save(update_fields=["size", "storage_key", "modified_at"])
        entry = existing
    usage.bytes_used = total
    usage.save(update_fields=["bytes_used"])
    return entry


def _ensure_directories(collection: Collection, names: tuple[str, ...], path: DataPath) -> None:
    for depth in range(len(names)):
        parent, name = "/".join(names[:depth]), names[depth]
        entry = selectors.entry_at(collection, parent, name)
        if entry is None:
            DataEntry.objects.create(
                collection=collection, parent=parent, name=name, kind=EntryKind.DIRECTORY
            )
        elif entry.is_file:
            where = "/".join(names[: depth + 1])
            raise ConflictError(f"{quoted(path.uri())}: {quoted(where)} is a file, not a directory")


# -- deletes ------------------------------------------------------------------------------


@transaction.atomic
def object_delete(*, actor: DataActor, path: DataPath, force: bool) -> int:
    """Delete the file, directory or collection `path` names; a non-empty directory or
    collection only with `force`. Returns how many files went."""
    collection = _writable_collection(actor, path)
    team = collection.team
    usage = _locked_usage(team)
    entries = DataEntry.objects.select_for_update().filter(collection=collection)
    if path.parts:
        entry = entries.filter(parent=path.parent, name=path.name).first()
        if entry is None:
            raise NotFoundError(f"no such file or directory {quoted(path.uri())}")
        inside = Q(parent=path.relative) | Q(parent__startswith=path.relative + "/")
        below = entries.filter(inside) if not entry.is_file else entries.none()
    else:
        entry = None
        below = entries
    if below.exists() and not force:
        raise ConflictError(f"{quoted(path.uri())} is not empty: delete it with force=true")
    files = list(below.filter(kind=EntryKind.FILE).values_list("storage_key", "size"))
    if entry is not None and entry.is_file:
        files.append((entry.storage_key, entry.size))
    freed = sum(size for _key, size in files)
    before = {"files": len(files), "bytes": freed}
    if entry is None:
        below.delete()
        Collection.objects.filter(pk=collection.pk).delete()
        audit_record(
            action=Action.COLLECTION_DELETED,
            team=team,
            principal=actor.principal,
            before={**before, "read": collection.read_acl},
            **_audit_target(collection),
        )
    else:
        below.delete()
        entry.delete()
        audit_record(
            action=Action.DATA_DELETED,
            team=team,
            principal=actor.principal,
            before={**before, "kind": entry.kind},
            **_audit_target(collection, path.relative),
        )
    usage.bytes_used = max(0, usage.bytes_used - freed)
    usage.save(update_fields=["bytes_used"])
    _delete_blobs_after_commit(configured_storage(), [key for key, _size in files])
    return len(files)


MODELS_TEMP_DIRECTORY = "temp"


def models_temp_files_purge(*, older_than_seconds: int | None = None) -> int:
    """Delete the files under `temp/` of every running model's own collection
    (`data://.algo/temp/...`, stored as `algo.<model>/temp/...`) last written more than
    `older_than_seconds` ago (MODELS_TEMP_FILES_SECONDS, a day: Algorithmia's temporary
    files lived as long). Returns how many files went."""
    seconds = (
        settings.MODELS_TEMP_FILES_SECONDS if older_than_seconds is None else older_than_seconds
    )
    cutoff = timezone.now() - timedelta(seconds=seconds)
    inside = Q(parent=MODELS_TEMP_DIRECTORY) | Q(parent__startswith=MODELS_TEMP_DIRECTORY + "/")
    removed = 0
    for collection in Collection.objects.filter(name__startswith="algo.").select_related("team"):
        with transaction.atomic():
            usage = _locked_usage(collection.team)
            stale = DataEntry.objects.select_for_update().filter(
                inside, collection=collection, kind=EntryKind.FILE, modified_at__lt=cutoff
            )
            files = list(stale.values_list("storage_key", "size"))
            if not files:
                continue
            stale.delete()
            freed = sum(size for _key, size in files)
            usage.bytes_used = max(0, usage.bytes_used - freed)
            usage.save(update_fields=["bytes_used"])
            audit_record(
                action=Action.DATA_DELETED,
                team=collection.team,
                before={"files": len(files), "bytes": freed, "expired": "temp"},
                **_audit_target(collection, MODELS_TEMP_DIRECTORY),
            )
            _delete_blobs_after_commit(configured_storage(), [key for key, _size in files])
            removed += len(files)
    return removed
