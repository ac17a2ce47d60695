"""The error a package the user must fix raises, and the messages the reader, the planner and
the writer build for it: names quoted for a message, sizes in words, limits explained."""

from __future__ import annotations

import contextlib
import json
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator

from .limits import MiB, PackageLimits

# What a damaged or hostile archive makes the standard library raise while reading it. Writes
# never run inside a block that catches these, so a full disk is not reported as a bad upload.
_READ_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,
    OverflowError,
    IndexError,
    KeyError,
    RuntimeError,
)


class PackageError(Exception):
    """A package the user supplied cannot be accepted.

    `message` is written for the user and names the offending member; `field` says what is
    wrong: "package" for the upload itself, a manifest field for manifest errors."""

    def __init__(self, message: str, *, field: str | None = "package"):
        super().__init__(message)
        self.message = message
        self.field = field


@contextlib.contextmanager
def _read_errors(what: str) -> Iterator[None]:
    """Turn what a damaged archive makes the standard library raise into a PackageError."""
    try:
        yield
    except PackageError:
        raise
    except _READ_ERRORS as exc:
        detail = str(exc) or type(exc).__name__
        raise PackageError(f"{what} ({detail})") from exc


def _too_big(limits: PackageLimits, member: str | None = None) -> PackageError:
    where = f" (stopped at {_show(member)})" if member else ""
    return PackageError(
        f"the package expands to more than {_human_bytes(limits.max_expanded_bytes)}, the "
        f"limit{where}; leave out files the model does not need"
    )


def _too_many_entries(limits: PackageLimits) -> PackageError:
    return PackageError(
        f"the package has more than {limits.max_files:,} entries, the limit; leave out "
        ".git, virtual environments and data the model does not need"
    )


def _too_deep(noun: str, name: str, depth: int, limits: PackageLimits) -> PackageError:
    return PackageError(
        f"{noun} {_show(name)} is nested {depth} levels deep; the limit is {limits.max_depth}"
    )


def _show(name: str, limit: int = 200) -> str:
    """A name quoted for a message: control characters and undecodable bytes escaped."""
    printable = name.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(printable) > limit:
        printable = printable[:limit] + "…"
    return json.dumps(printable, ensure_ascii=False)


def _human_bytes(count: int) -> str:
    if count < MiB:
        return f"{count:,} bytes"
    value = count / MiB
    return f"{value:.0f} MiB" if value == int(value) else f"{value:.1f} MiB"
