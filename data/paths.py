"""Data URIs as callers write them: `data://OWNER/COLLECTION/some/path`, where OWNER is a
namespace or `.my` (the caller's own). Every part is attacker-written, so each is checked here
before anything looks it up; nothing of it ever becomes a file-system path (storage keys are
generated, data/services.py: storage_key_for).

A name is refused when it is empty, `.` or `..`, longer than 255 bytes in UTF-8, or holds a
NUL, a backslash, a control character or an invisible formatting one (bidirectional
overrides, zero-width joiners: Unicode category Cf), so that two names that look alike are
not two files. Names are normalised to NFC, so `é` typed either way is one file."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from marketplace.core.errors import InputError, NotFoundError

MY = ".my"
# A running model's own collection (data/selectors.py: models_own_path).
ALGO = ".algo"
# Reserved for Algorithmia's per-session collections; not available.
RESERVED_OWNERS = frozenset({".session"})
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
MAX_DEPTH = 32
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
OWNER_NAME = re.compile(r"^[a-z][a-z0-9-]{1,38}$")


@dataclass(frozen=True)
class DataPath:
    """`owner` is `.my` or a namespace slug; `collection` is None for the owner itself (its
    list of collections); `parts` are the names below the collection."""

    owner: str
    collection: str | None = None
    parts: tuple[str, ...] = ()

    @property
    def relative(self) -> str:
        return "/".join(self.parts)

    @property
    def parent(self) -> str:
        return "/".join(self.parts[:-1])

    @property
    def name(self) -> str:
        return self.parts[-1]

    def uri(self, owner: str | None = None) -> str:
        text = f"data://{owner or self.owner}"
        if self.collection is not None:
            text += f"/{self.collection}"
        if self.parts:
            text += f"/{self.relative}"
        return text


def quoted(text: str) -> str:
    """A caller's text in a message: repr-escaped, so no control character reaches a
    header or a log line, and cut short."""
    shown = repr(text)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def parse_data_path(raw: str) -> DataPath:
    """Parse what follows `/v1/data/` (or `data://`). One trailing slash is allowed (a
    directory); an empty segment anywhere else is not."""
    if "\x00" in raw:
        raise InputError("a data path may not contain a NUL character")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES + 200:
        raise InputError(f"a data path is at most {MAX_PATH_BYTES} bytes")
    text = raw.removeprefix("data://")
    if text.endswith("/"):
        text = text[:-1]
    if not text:
        raise NotFoundError("name an owner: data://OWNER/COLLECTION/... or data://.my/...")
    if text.startswith("/"):
        raise InputError("a data path is relative to its owner: data://OWNER/COLLECTION/...")
    segments = text.split("/")
    owner = _owner(segments[0])
    if len(segments) == 1:
        return DataPath(owner)
    collection = collection_name(segments[1])
    parts = tuple(entry_name(segment) for segment in segments[2:])
    if len(parts) > MAX_DEPTH:
        raise InputError(f"a data path is at most {MAX_DEPTH} directories deep")
    if len("/".join(parts).encode("utf-8")) > MAX_PATH_BYTES:
        raise InputError(f"a path inside a collection is at most {MAX_PATH_BYTES} bytes")
    return DataPath(owner, collection, parts)


def _owner(segment: str) -> str:
    if segment in RESERVED_OWNERS:
        raise NotFoundError(
            f"data://{segment} is for models running for a caller, which is not available yet"
        )
    if segment in (MY, ALGO):
        return segment
    lowered = segment.lower()
    if not OWNER_NAME.match(lowered):
        raise NotFoundError(f"no such owner {quoted(segment)}")
    return lowered


def collection_name(segment: str) -> str:
    if not COLLECTION_NAME.match(segment):
        raise InputError(
            f"{quoted(segment)} is not a collection name: 1 to 100 letters, digits, '_', '-' "
            "or '.', not starting with '.' or '-'"
        )
    return segment


def entry_name(segment: str) -> str:
    name = unicodedata.normalize("NFC", segment)
    if name in ("", ".", ".."):
        raise InputError(
            "a data path may not have empty, '.' or '..' segments"
            + ("" if name else " (two slashes in a row)")
        )
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InputError(f"a file or directory name is at most {MAX_NAME_BYTES} bytes")
    for character in name:
        category = unicodedata.category(character)
        if character == "\\" or category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise InputError(
                f"{quoted(segment)} holds {character!a}: names may not contain "
                "backslashes, control, invisible formatting or unassigned characters"
            )
    return name


# -- connected buckets ----------------------------------------------------------------------

CONNECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_SCHEME = re.compile(r"^s3:/{1,2}", re.IGNORECASE)


@dataclass(frozen=True)
class ConnectorPath:
    """`s3://CONNECTOR/some/path`: a connector of the caller's namespace and the names below
    it (each checked like a hosted file's, so `..` and friends never reach a bucket key)."""

    connector: str
    parts: tuple[str, ...] = ()

    @property
    def relative(self) -> str:
        return "/".join(self.parts)

    def uri(self) -> str:
        return f"s3://{self.connector}" + (f"/{self.relative}" if self.parts else "")

    def child(self, name: str) -> ConnectorPath:
        return ConnectorPath(self.connector, (*self.parts, entry_name(name)))


def is_connector_path(raw: str) -> bool:
    """Whether a `/v1/data/...` path names a connected bucket: the unchanged client sends
    `client.file("s3://B/x")` as `/v1/data/s3://B/x` (a proxy may fold the `//`)."""
    return bool(_S3_SCHEME.match(raw))


def connector_name(segment: str) -> str:
    name = segment.lower()
    if not CONNECTOR_NAME.match(name) or ".." in name:
        raise NotFoundError(f"no such connector {quoted(segment)}")
    return name


def parse_connector_path(raw: str) -> ConnectorPath:
    """Parse `s3://CONNECTOR/path` (or what follows `/v1/connector/s3/`)."""
    if "\x00" in raw:
        raise InputError("a data path may not contain a NUL character")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES + 200:
        raise InputError(f"a data path is at most {MAX_PATH_BYTES} bytes")
    text = _S3_SCHEME.sub("", raw, count=1)
    if text.endswith("/"):
        text = text[:-1]
    if not text:
        raise NotFoundError("name a connector: s3://CONNECTOR/path")
    segments = text.split("/")
    parts = tuple(entry_name(segment) for segment in segments[1:])
    if len(parts) > MAX_DEPTH:
        raise InputError(f"a data path is at most {MAX_DEPTH} directories deep")
    if len("/".join(parts).encode("utf-8")) > MAX_PATH_BYTES:
        raise InputError(f"a path inside a bucket is at most {MAX_PATH_BYTES} bytes")
    return ConnectorPath(connector_name(segments[0]), parts)


def bucket_prefix(raw: str) -> str:
    """A connector's optional key prefix, as `a/b/` (or ""), each part checked."""
    text = raw.strip().strip("/")
    if not text:
        return ""
    return "/".join(entry_name(part) for part in text.split("/")) + "/"
