"""Safe unpacking of uploaded model packages, and the hash that identifies a package.

A package arrives as a folder, as an archive of one (.zip, .tar, .tar.gz/.tgz, .tar.bz2,
.tar.xz; recognised by content, not only by name) or as a bare model file in a standard format
(.onnx, .skops). `unpack_package` turns each into a plain folder. Archives come from strangers,
so unpacking never trusts them:

- every member name is checked before anything is written (no absolute paths, no `..`, no
  drive letters or backslashes, no NUL or control characters), and files are created through
  directory file descriptors with O_NOFOLLOW|O_EXCL, so nothing can land outside `dest`;
- symlinks are kept only when they resolve inside the package (following the package's own
  symlinks the way the kernel will), and are created last, after every file has been written;
  tar hard links become copies of a member inside the package; devices, FIFOs and sockets are
  refused;
- sizes are counted on the bytes actually written, so a zip bomb whose headers lie is stopped
  as soon as it crosses the limit; the number of entries and the nesting depth are bounded;
- on any error `dest` is emptied again.

The plan (which entries, where, of what kind) is computed and checked completely before the
first byte is written; only the byte counting can fail half-way.

Each step is a module: `reading` (zip, tar, folder, bare model file), `planning` (member
names, links, limits), `writing` (directory file descriptors, modes, emptying on failure), on
`limits`, `errors` and `members`, which they share. Names with a leading underscore are
private to this package.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .errors import PackageError, _show
from .limits import _CHUNK, _OPEN_READ, DEFAULT_LIMITS, SKIPPED_NAMES, KiB, MiB, PackageLimits
from .planning import MACOS_METADATA, _plan
from .reading import MODEL_FILE_SUFFIXES, _open_reader
from .writing import _empty_folder, _extract

__all__ = [
    "DEFAULT_LIMITS",
    "MACOS_METADATA",
    "MODEL_FILE_SUFFIXES",
    "SKIPPED_NAMES",
    "KiB",
    "MiB",
    "PackageError",
    "PackageLimits",
    "package_hash",
    "unpack_package",
]


# --- the public API ---------------------------------------------------------------------------


def unpack_package(
    source: Path,
    dest: Path,
    *,
    filename: str | None = None,
    limits: PackageLimits = DEFAULT_LIMITS,
) -> None:
    """Unpack `source` (a folder, an archive or a bare .onnx/.skops file) into the empty folder
    `dest`, which then holds the package root. `filename` is the name the file was uploaded
    under, when `source` is a temporary file without it. Raises PackageError for anything the
    user must fix; `dest` is then left empty."""
    source, dest = Path(source), Path(dest)
    if not dest.is_dir():
        raise ValueError(f"unpack_package: destination {dest} is not an existing folder")
    if any(dest.iterdir()):
        raise ValueError(f"unpack_package: destination {dest} is not empty")
    root = dest.resolve(strict=True)
    try:
        with _open_reader(source, root, filename, limits) as reader:
            entries = _plan(reader, limits)
            _extract(entries, reader, root, limits)
    except BaseException:
        _empty_folder(root)
        raise


def package_hash(root: Path) -> str:
    """sha256 (hex) of an unpacked package: its files' relative paths, executable bits and
    contents, and its symlinks' targets, in a fixed order. Folders, timestamps, owners and the
    archive format do not count, so the same content always gives the same hash."""
    root = Path(root)
    records: list[tuple[bytes, bytes, bytes]] = []
    pending: list[tuple[str, ...]] = [()]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(root, *rel)) as listing:
            for item in listing:
                parts = (*rel, item.name)
                path = os.fsencode("/".join(parts))
                mode = item.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append(parts)
                elif stat.S_ISLNK(mode):
                    records.append((path, b"L", os.fsencode(os.readlink(item.path))))
                elif stat.S_ISREG(mode):
                    kind = b"X" if mode & 0o111 else b"F"
                    records.append((path, kind, _file_sha256(item.path).encode()))
                else:
                    raise PackageError(f"{_show('/'.join(parts))} is not a file, folder or link")
    digest = hashlib.sha256(b"marketplace-package-v1\n")
    for path, kind, data in sorted(records):
        digest.update(kind + b"\0" + path + b"\0" + data + b"\n")
    return digest.hexdigest()


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, _OPEN_READ)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
