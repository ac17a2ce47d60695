"""The orphan sweep: stored blobs that no `DataEntry` names, older than a grace period, are
deleted. They are what a crash leaves between streaming a file to storage and indexing it
(data/services.py: file_write), or a replaced blob whose deletion after the commit failed.

The grace period (DATA_ORPHAN_GRACE_SECONDS, a day by default) is what keeps the sweep away
from an upload in flight: its blob exists before its index row, for as long as the upload
and its short transaction take, far less than the grace period."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.utils import timezone

from .models import DataEntry
from .storage import Storage, configured_storage

logger = logging.getLogger(__name__)
BATCH = 500


def _batches(keys: Iterable[str]) -> Iterator[list[str]]:
    iterator = iter(keys)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def orphans_sweep(
    *, storage: Storage | None = None, grace_seconds: int | None = None, dry_run: bool = False
) -> list[str]:
    """Delete (or with `dry_run` only list) the orphaned blobs; returns their keys."""
    storage = storage or configured_storage()
    grace = settings.DATA_ORPHAN_GRACE_SECONDS if grace_seconds is None else grace_seconds
    cutoff = timezone.now() - timedelta(seconds=grace)
    removed: list[str] = []
    for keys in _batches(storage.keys_older_than(cutoff)):
        indexed = set(
            DataEntry.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True)
        )
        for key in keys:
            if key in indexed:
                continue
            if not dry_run:
                storage.delete(key)
            removed.append(key)
    if removed:
        logger.info(
            "data orphan sweep: %s %d blob(s)", "found" if dry_run else "removed", len(removed)
        )
    return removed
