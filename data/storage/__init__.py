"""Where file contents live. A storage keeps opaque blobs under keys; it knows nothing of
collections, permissions or quotas (data/services.py does). `local` keeps them under
DATA_LOCAL_ROOT (var/data by default), `s3` in any S3-compatible bucket; a connector to a
team's own bucket will be one more implementation of the same interface.

Every method streams: `save` reads its source in chunks until EOF (and leaves nothing
behind if the source raises, e.g. over a size limit), `open` gives the bytes as an iterator
of chunks whose `close()` releases the file or connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO, Protocol

from django.conf import settings

from marketplace.core.registry import Registry

CHUNK_BYTES = 1024 * 1024


class BlobMissing(LookupError):
    """The index names a blob the store does not have."""


class Storage(Protocol):
    name: str

    def save(self, key: str, source: BinaryIO) -> None: ...

    def open(self, key: str, *, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The blob's bytes from `start`, at most `length` of them. Raises BlobMissing
        before returning when there is no such blob."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing one is not an error."""
        ...

    def keys_older_than(self, moment: datetime) -> Iterator[str]:
        """Every blob last written before `moment` (for the orphan sweep, data/sweep.py).
        Unfinished writes older than it (temporary files, multipart uploads) are removed
        on the way."""
        ...


# name → a factory taking Django's settings; filled in data/apps.py.
storages: Registry[Callable[[object], Storage]] = Registry("data storage")
_built: dict[tuple, Storage] = {}


def _configuration() -> tuple:
    return tuple(
        getattr(settings, name)
        for name in (
            "DATA_STORAGE",
            "DATA_LOCAL_ROOT",
            "DATA_S3_BUCKET",
            "DATA_S3_PREFIX",
            "DATA_S3_ENDPOINT_URL",
            "DATA_S3_REGION",
            "DATA_S3_ACCESS_KEY_ID",
            "DATA_S3_SECRET_ACCESS_KEY",
            "DATA_S3_ADDRESSING_STYLE",
        )
    )


def configured_storage() -> Storage:
    """The storage DATA_STORAGE names, built once per configuration (a client of an object
    store is worth keeping)."""
    configuration = _configuration()
    storage = _built.get(configuration)
    if storage is None:
        storage = _built[configuration] = storages.get(settings.DATA_STORAGE)(settings)
    return storage
