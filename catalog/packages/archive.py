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
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

KiB = 1024
MiB = 1024 * KiB

# Folders that are never part of a package, in a folder or in an archive.
SKIPPED_NAMES = frozenset({".git", "__pycache__"})
# What macOS's "Compress" adds next to the real folder in a zip: resource forks, never content.
MACOS_METADATA = "__MACOSX"
# Standard model formats that are uploaded as a single file and kept as it is.
MODEL_FILE_SUFFIXES = (".onnx", ".skops")

_CHUNK = 256 * KiB
_MAX_SYMLINK_TARGET = 1024  # characters; longer targets are refused
_MAX_SYMLINK_HOPS = 40  # like the kernel's MAXSYMLINKS
_MAX_RESOLVE_STEPS = 4096  # path components walked while resolving one symlink
_MAX_TAR_HEADER_READ = 1 * MiB  # pax/GNU long-name headers larger than this are refused
_TAR_OVERHEAD_PER_ENTRY = 8 * KiB  # headers and padding allowed on top of the file bytes

_OPEN_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_DRIVE_RE = re.compile(r"^[A-Za-z]:")

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


@dataclass(frozen=True)
class PackageLimits:
    max_upload_bytes: int = 200 * MiB  # the archive or file as uploaded
    max_expanded_bytes: int = 500 * MiB  # sum of the sizes of the extracted files
    max_files: int = 5000  # entries in the archive (files, folders, links)
    max_depth: int = 32  # path components of the deepest entry


DEFAULT_LIMITS = PackageLimits()


class PackageError(Exception):
    """A package the user supplied cannot be accepted.

    `message` is written for the user and names the offending member; `field` says what is
    wrong: "package" for the upload itself, a manifest field for manifest errors."""

    def __init__(self, message: str, *, field: str | None = "package"):
        super().__init__(message)
        self.message = message
        self.field = field


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


# --- what the readers produce -------------------------------------------------------------------


@dataclass(eq=False)
class _Member:
    name: str  # as stored in the archive, for messages
    kind: str  # file | dir | symlink | hardlink | device | fifo | socket | other
    executable: bool = False
    size: int = 0  # declared size of a file (checked early; the real count is on writing)
    link: str = ""  # symlink target, or hard link target (an archive path)
    handle: object = None  # reader-specific: ZipInfo, TarInfo, a path
    parts: tuple[str, ...] = ()  # final place inside the package
    link_parts: tuple[str, ...] = ()  # hard links: the target's final place
    link_member: _Member | None = None  # hard links: the target's member


_REFUSED_KINDS = {
    "device": "is a device file; packages may only contain files, folders and links",
    "fifo": "is a FIFO (named pipe); packages may only contain files, folders and links",
    "socket": "is a socket; packages may only contain files, folders and links",
    "other": "has an unsupported type; packages may only contain files, folders and links",
}


class _Reader(Protocol):
    display: str  # the upload's name, for messages
    noun: str  # "member" for archives, "file" for folders
    strip_wrapper: bool  # remove a single top-level folder
    archive: bool

    def members(self) -> Iterator[_Member]: ...

    def chunks(self, member: _Member) -> Iterator[bytes]: ...


# --- choosing a reader --------------------------------------------------------------------------


@contextlib.contextmanager
def _open_reader(
    source: Path, root: Path, filename: str | None, limits: PackageLimits
) -> Iterator[_Reader]:
    if source.is_dir():
        source_root = source.resolve(strict=True)
        if root == source_root or root.is_relative_to(source_root):
            raise ValueError("unpack_package: the destination is inside the source folder")
        yield _FolderReader(source_root, limits)
        return

    display = _show(_basename(filename or source.name))
    size = source.stat().st_size
    if size > limits.max_upload_bytes:
        raise PackageError(
            f"{display} is {_human_bytes(size)}; the largest package accepted is "
            f"{_human_bytes(limits.max_upload_bytes)}"
        )
    if size == 0:
        raise PackageError(f"{display} is empty")

    kind = _sniff(source, filename or source.name)
    if kind is None:
        raise PackageError(
            f"{display} is not a package: upload a folder as .zip, .tar, .tar.gz, .tar.bz2 or "
            ".tar.xz, or a model file in a standard format (.onnx, .skops)"
        )
    with open(source, "rb") as raw:
        if kind == "model-file":
            yield _ModelFileReader(raw, _model_file_name(filename or source.name), size)
        elif kind == "zip":
            with _ZipReader(raw, display, limits) as reader:
                yield reader
        else:
            with _TarReader(raw, kind, display, limits) as reader:
                yield reader


def _sniff(path: Path, name: str) -> str | None:
    """What the file is: "model-file", "zip", "tar", "gz", "bz2", "xz", or None. The content
    decides (a .zip that is really a .tar.gz is read as one); the name decides for the standard
    model formats (a .skops file is itself a zip) and for archives without a magic number."""
    lower = name.lower()
    if lower.endswith(MODEL_FILE_SUFFIXES):
        return "model-file"
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head[257:262] == b"ustar":
        return "tar"
    for suffixes, kind in (
        ((".zip",), "zip"),
        ((".tar.gz", ".tgz"), "gz"),
        ((".tar.bz2", ".tbz2", ".tbz"), "bz2"),
        ((".tar.xz", ".txz"), "xz"),
        ((".tar",), "tar"),
    ):
        if lower.endswith(suffixes):
            return kind
    return None


# --- zip ----------------------------------------------------------------------------------------


class _ZipReader:
    noun = "member"
    strip_wrapper = True
    archive = True

    def __init__(self, raw: BinaryIO, display: str, limits: PackageLimits):
        self.display = display
        self.limits = limits
        with _read_errors(f"{display} is not a valid zip archive"):
            # zipfile builds an object per central-directory entry before we see any of them:
            # count them first, so a directory of millions of entries cannot exhaust memory.
            count = _zip_entry_count(raw, limits.max_files)
            if count is not None and count > limits.max_files:
                raise _too_many_entries(limits)
            self.zip = zipfile.ZipFile(raw)

    def __enter__(self) -> _ZipReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.zip.close()

    def members(self) -> Iterator[_Member]:
        infos = self.zip.infolist()
        if len(infos) > self.limits.max_files:
            raise _too_many_entries(self.limits)
        for info in infos:
            # orig_filename keeps what zipfile silently cuts at a NUL byte.
            name = info.orig_filename
            mode = info.external_attr >> 16
            if info.flag_bits & 0x1:
                raise PackageError(
                    f"member {_show(name)} is encrypted; encrypted zip archives are not "
                    "supported, create the archive without a password"
                )
            # Not info.is_dir(): it indexes the name's last character, and a name may be empty.
            if info.filename.endswith("/") or stat.S_ISDIR(mode):
                kind = "dir"
            elif stat.S_ISLNK(mode):
                kind = "symlink"
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = "device"
            elif stat.S_ISFIFO(mode):
                kind = "fifo"
            elif stat.S_ISSOCK(mode):
                kind = "socket"
            else:  # a regular file, or a zip made without Unix modes (Windows)
                kind = "file"
            member = _Member(
                name=name,
                kind=kind,
                executable=bool(mode & 0o111),
                size=info.file_size,
                handle=info,
            )
            if kind == "symlink":
                member.link = self._symlink_target(member)
            yield member

    def _symlink_target(self, member: _Member) -> str:
        info = member.handle
        if info.file_size > _MAX_SYMLINK_TARGET * 4:
            raise PackageError(f"member {_show(member.name)} is a symlink with a target too long")
        with _read_errors(f"member {_show(member.name)} is corrupt"):
            with self.zip.open(info) as src:
                data = src.read(_MAX_SYMLINK_TARGET * 4 + 1)
            return data.decode("utf-8")

    def chunks(self, member: _Member) -> Iterator[bytes]:
        what = f"member {_show(member.name)} is corrupt"
        with _read_errors(what):
            src = self.zip.open(member.handle)
        with src:
            while True:
                with _read_errors(what):
                    chunk = src.read(_CHUNK)
                if not chunk:
                    return
                yield chunk


_ZIP_END = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header


def _zip_entry_count(f: BinaryIO, limit: int) -> int | None:
    """How many entries zipfile will read from the central directory, counting no further than
    limit + 1. Finds the directory the way zipfile does (end record, zip64 locator, data
    prepended to the archive). None when there is no end record: zipfile then refuses the
    file itself."""
    try:
        f.seek(0, os.SEEK_END)
        file_size = f.tell()
        if file_size < _ZIP_END.size:
            return None
        f.seek(file_size - _ZIP_END.size)
        record = f.read(_ZIP_END.size)
        location = file_size - _ZIP_END.size
        if not (record[:4] == b"PK\x05\x06" and record[-2:] == b"\0\0"):
            start = max(file_size - (1 << 16) - _ZIP_END.size, 0)
            f.seek(start)
            tail = f.read()
            found = tail.rfind(b"PK\x05\x06")
            if found < 0 or len(tail) - found < _ZIP_END.size:
                return None
            record = tail[found : found + _ZIP_END.size]
            location = start + found
        end = _ZIP_END.unpack(record)
        size_cd, offset_cd = end[5], end[6]
        extra = 0
        locator_at = location - _ZIP64_LOCATOR.size
        if locator_at >= 0:
            f.seek(locator_at)
            locator = f.read(_ZIP64_LOCATOR.size)
            if locator[:4] == b"PK\x06\x07" and locator_at - _ZIP64_END.size >= 0:
                f.seek(locator_at - _ZIP64_END.size)
                end64 = _ZIP64_END.unpack(f.read(_ZIP64_END.size))
                if end64[0] == b"PK\x06\x06":
                    size_cd, offset_cd = end64[8], end64[9]
                    extra = _ZIP64_LOCATOR.size + _ZIP64_END.size
        start_dir = location - size_cd - extra
        if start_dir < 0 or offset_cd > location:
            return None
        f.seek(start_dir)
        count = total = 0
        while total < size_cd:
            header = f.read(_ZIP_CENTRAL.size)
            if len(header) != _ZIP_CENTRAL.size or header[:4] != b"PK\x01\x02":
                return None
            fields = _ZIP_CENTRAL.unpack(header)
            variable = fields[12] + fields[13] + fields[14]
            total += _ZIP_CENTRAL.size + variable
            count += 1
            if count > limit:
                return count
            f.seek(variable, os.SEEK_CUR)
        return count
    except (OSError, ValueError, struct.error):
        return None
    finally:
        with contextlib.suppress(OSError, ValueError):
            f.seek(0)


# --- tar ----------------------------------------------------------------------------------------


class _BoundedStream:
    """The decompressed tar stream, refusing to go further than the package may expand to.

    tarfile skips over member data while listing, and reads pax and GNU long-name headers in
    one piece: both are bounded here, so a tar bomb costs neither unbounded time nor memory."""

    def __init__(self, raw: BinaryIO, budget: int, limits: PackageLimits):
        self._raw = raw
        self._budget = budget
        self._limits = limits

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_TAR_HEADER_READ:
            raise PackageError("the tar archive has a header larger than 1 MiB")
        data = self._raw.read(size)
        if self._raw.tell() > self._budget:
            raise _too_big(self._limits)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET and offset > self._budget:
            raise _too_big(self._limits)
        position = self._raw.seek(offset, whence)
        if position > self._budget:
            raise _too_big(self._limits)
        return position

    def tell(self) -> int:
        return self._raw.tell()


class _TarReader:
    noun = "member"
    strip_wrapper = True
    archive = True

    def __init__(self, raw: BinaryIO, compression: str, display: str, limits: PackageLimits):
        self.display = display
        self.limits = limits
        self._decompressed: BinaryIO | None = None
        if compression == "gz":
            self._decompressed = gzip.GzipFile(fileobj=raw, mode="rb")
        elif compression == "bz2":
            self._decompressed = bz2.BZ2File(raw)
        elif compression == "xz":
            self._decompressed = lzma.LZMAFile(raw)  # noqa: SIM115 (closed in __exit__)
        stream = self._decompressed or raw
        budget = limits.max_expanded_bytes + (limits.max_files + 1) * _TAR_OVERHEAD_PER_ENTRY + MiB
        self._stream = _BoundedStream(stream, budget, limits)
        kind = "tar" if compression == "tar" else f"tar.{compression}"
        with _read_errors(f"{display} is not a valid {kind} archive"):
            head = self._stream.read(tarfile.BLOCKSIZE)
            if not head.strip(b"\0"):
                raise PackageError("the package is empty: the archive contains no files")
            self._stream.seek(0)
            self.tar = tarfile.open(fileobj=self._stream, mode="r:")  # noqa: SIM115

    def __enter__(self) -> _TarReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.tar.close()
        if self._decompressed is not None:
            self._decompressed.close()

    def members(self) -> Iterator[_Member]:
        count = 0
        iterator = iter(self.tar)
        while True:
            with _read_errors(f"{self.display} is corrupt"):
                info = next(iterator, None)
            if info is None:
                return
            count += 1
            if count > self.limits.max_files:
                raise _too_many_entries(self.limits)
            if info.isreg():
                kind = "file"
            elif info.isdir():
                kind = "dir"
            elif info.issym():
                kind = "symlink"
            elif info.islnk():
                kind = "hardlink"
            elif info.ischr() or info.isblk():
                kind = "device"
            elif info.isfifo():
                kind = "fifo"
            else:
                kind = "other"
            yield _Member(
                name=info.name,
                kind=kind,
                executable=bool(info.mode & 0o111),
                size=info.size if kind == "file" else 0,
                link=info.linkname if kind in ("symlink", "hardlink") else "",
                handle=info,
            )

    def chunks(self, member: _Member) -> Iterator[bytes]:
        what = f"member {_show(member.name)} is corrupt"
        with _read_errors(what):
            src = self.tar.extractfile(member.handle)
        if src is None:
            raise PackageError(f"member {_show(member.name)} cannot be read")
        with src:
            while True:
                with _read_errors(what):
                    chunk = src.read(_CHUNK)
                if not chunk:
                    return
                yield chunk


# --- a folder, and a bare model file ------------------------------------------------------------


class _FolderReader:
    noun = "file"
    strip_wrapper = False
    archive = False

    def __init__(self, root: Path, limits: PackageLimits):
        self.root = root
        self.limits = limits
        self.display = _show(root.name)

    def members(self) -> Iterator[_Member]:
        count = 0
        pending: list[tuple[str, ...]] = [()]
        while pending:
            rel = pending.pop()
            with (
                _read_errors(f"folder {_show('/'.join(rel) or '.')} cannot be read"),
                os.scandir(os.path.join(self.root, *rel)) as listing,
            ):
                items = sorted(listing, key=lambda item: item.name)
            for item in items:
                if item.name in SKIPPED_NAMES:
                    continue
                parts = (*rel, item.name)
                name = "/".join(parts)
                count += 1
                if count > self.limits.max_files:
                    raise _too_many_entries(self.limits)
                if len(parts) > self.limits.max_depth:
                    raise _too_deep(self.noun, name, len(parts), self.limits)
                with _read_errors(f"file {_show(name)} cannot be read"):
                    st = item.stat(follow_symlinks=False)
                    link = os.readlink(item.path) if stat.S_ISLNK(st.st_mode) else ""
                kind = _kind_of_mode(st.st_mode)
                if kind == "dir":
                    pending.append(parts)
                yield _Member(
                    name=name,
                    kind=kind,
                    executable=bool(st.st_mode & 0o111),
                    size=st.st_size if kind == "file" else 0,
                    link=link,
                    handle=item.path,
                )

    def chunks(self, member: _Member) -> Iterator[bytes]:
        return _file_chunks(member.handle, f"file {_show(member.name)} cannot be read")


class _ModelFileReader:
    noun = "file"
    strip_wrapper = False
    archive = False

    def __init__(self, raw: BinaryIO, name: str, size: int):
        self.raw = raw
        self.name = name
        self.size = size
        self.display = _show(name)

    def members(self) -> Iterator[_Member]:
        yield _Member(name=self.name, kind="file", size=self.size)

    def chunks(self, member: _Member) -> Iterator[bytes]:
        self.raw.seek(0)
        while chunk := self.raw.read(_CHUNK):
            yield chunk


def _kind_of_mode(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "other"


def _file_chunks(path: str, what: str) -> Iterator[bytes]:
    with _read_errors(what):
        fd = os.open(path, _OPEN_READ)
    with os.fdopen(fd, "rb") as src:
        while True:
            with _read_errors(what):
                chunk = src.read(_CHUNK)
            if not chunk:
                return
            yield chunk


# --- planning: every check that needs no bytes written ------------------------------------------


def _plan(reader: _Reader, limits: PackageLimits) -> list[_Member]:
    """The entries to create, in the order to create them (folders, files, hard-link copies,
    symlinks), at their final place inside the package. Raises PackageError for anything
    unsafe or over a limit, before anything is written."""
    noun = reader.noun
    kept: list[_Member] = []
    for member in reader.members():
        member.parts = _safe_parts(member.name, noun)
        if not member.parts:
            if member.kind == "dir":
                continue  # the archive's "./"
            raise PackageError(f"{noun} {_show(member.name)} has an empty name")
        if _skipped(member.parts, reader.archive):
            continue
        if member.kind in _REFUSED_KINDS:
            raise PackageError(f"{noun} {_show(member.name)} {_REFUSED_KINDS[member.kind]}")
        kept.append(member)

    prefix: tuple[str, ...] = ()
    if reader.strip_wrapper and kept and len({m.parts[0] for m in kept}) == 1:
        only_top_is_folder = all(len(m.parts) > 1 or m.kind == "dir" for m in kept)
        if only_top_is_folder and any(len(m.parts) > 1 for m in kept):
            prefix = kept[0].parts[:1]
            kept = [m for m in kept if len(m.parts) > 1]
            for member in kept:
                member.parts = member.parts[1:]

    by_path: dict[tuple[str, ...], _Member] = {}
    for member in kept:
        if len(member.parts) > limits.max_depth:
            raise _too_deep(noun, member.name, len(member.parts), limits)
        existing = by_path.get(member.parts)
        if existing is not None:
            if existing.kind == member.kind == "dir":
                continue
            raise PackageError(f"{noun} {_show(member.name)} appears more than once")
        by_path[member.parts] = member
    entries = list(by_path.values())

    for member in entries:
        for depth in range(1, len(member.parts)):
            parent = by_path.get(member.parts[:depth])
            if parent is not None and parent.kind != "dir":
                raise PackageError(
                    f"{noun} {_show(member.name)} is inside {_show(parent.name)}, "
                    f"which is a {'symlink' if parent.kind == 'symlink' else 'file'}, "
                    "not a folder"
                )

    links = {m.parts: m.link for m in entries if m.kind == "symlink"}
    for member in entries:
        if member.kind == "symlink":
            _check_symlink(member, links, noun)
        elif member.kind == "hardlink":
            _check_hardlink(member, by_path, prefix)

    # An archive declares its sizes: refuse early when they add up to too much. The real limit
    # is on the bytes written (a zip bomb's headers lie); a folder is only ever counted.
    declared = sum(m.size for m in entries if m.kind == "file")
    declared += sum(m.link_member.size for m in entries if m.kind == "hardlink")
    if reader.archive and declared > limits.max_expanded_bytes:
        raise _too_big(limits)
    if not any(m.kind in ("file", "hardlink") for m in entries):
        raise PackageError("the package is empty: it contains no files")

    # Files keep their order in the archive (the sort is stable): a compressed tar can only be
    # read forwards, and every step back would decompress it again from the start.
    order = {"dir": 0, "file": 1, "hardlink": 2, "symlink": 3}
    return sorted(entries, key=lambda m: order[m.kind])


def _safe_parts(name: str, noun: str) -> tuple[str, ...]:
    """The path components of an archive member name, refusing every way out of the package."""

    def refuse(reason: str) -> PackageError:
        return PackageError(f"{noun} {_show(name)} {reason}")

    if "\x00" in name:
        raise refuse("has a NUL character in its name")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise refuse("has a control character in its name")
    if "\\" in name:
        raise refuse("has a backslash in its name; paths in a package use forward slashes")
    if name.startswith("/"):
        raise refuse("is an absolute path; paths in a package must be relative")
    if _DRIVE_RE.match(name):
        raise refuse("starts with a Windows drive letter; paths in a package must be relative")
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise refuse('has a ".." component; files must stay inside the package')
        if len(os.fsencode(part)) > 255:
            raise refuse("has a path component longer than 255 bytes")
        parts.append(part)
    return tuple(parts)


def _skipped(parts: tuple[str, ...], archive: bool) -> bool:
    if any(part in SKIPPED_NAMES for part in parts):
        return True
    return archive and parts[0] == MACOS_METADATA


def _check_symlink(member: _Member, links: dict[tuple[str, ...], str], noun: str) -> None:
    target = member.link
    show = f"{noun} {_show(member.name)} is a symlink to {_show(target)}"
    if not target:
        raise PackageError(f"{noun} {_show(member.name)} is a symlink with an empty target")
    if len(target) > _MAX_SYMLINK_TARGET:
        raise PackageError(f"{noun} {_show(member.name)} is a symlink with a target too long")
    if "\x00" in target or "\\" in target:
        raise PackageError(f"{show}, which is not a valid target")
    if target.startswith("/") or _DRIVE_RE.match(target):
        raise PackageError(
            f"{show}, an absolute path outside the package; only relative links that stay "
            "inside the package are allowed"
        )
    budget = {"hops": _MAX_SYMLINK_HOPS, "steps": _MAX_RESOLVE_STEPS}
    resolved = _resolve(member.parts[:-1], target, links, budget)
    if resolved is None:
        raise PackageError(
            f"{show}, which points outside the package; only links that stay inside the "
            "package are allowed"
        )
    if resolved is _LOOP:
        raise PackageError(f"{show}: too many levels of symbolic links")


_LOOP = ("<loop>",)


def _resolve(
    start: tuple[str, ...], target: str, links: dict[tuple[str, ...], str], budget: dict
) -> tuple[str, ...] | None:
    """Where `target`, seen from the folder `start`, leads inside the package, following the
    package's own symlinks as the kernel would (so `a -> ..` then `b -> a/..` is caught):
    the parts of the result, None when it leaves the package, _LOOP when it does not end."""
    stack = list(start)
    for part in target.split("/"):
        budget["steps"] -= 1
        if budget["steps"] < 0:
            return _LOOP
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return None
            stack.pop()
            continue
        stack.append(part)
        link = links.get(tuple(stack))
        if link is not None:
            budget["hops"] -= 1
            if budget["hops"] < 0:
                return _LOOP
            resolved = _resolve(tuple(stack[:-1]), link, links, budget)
            if resolved is None or resolved is _LOOP:
                return resolved
            stack = list(resolved)
    return tuple(stack)


def _check_hardlink(
    member: _Member,
    by_path: dict[tuple[str, ...], _Member],
    prefix: tuple[str, ...],
) -> None:
    def refuse(reason: str) -> PackageError:
        return PackageError(
            f"member {_show(member.name)} is a hard link to {_show(member.link)}, {reason}"
        )

    try:
        parts = _safe_parts(member.link, "hard link target")
    except PackageError as exc:
        raise refuse("which is outside the package") from exc
    if not parts or parts[: len(prefix)] != prefix:
        raise refuse("which is outside the package")
    parts = parts[len(prefix) :]
    target = by_path.get(parts)
    if target is None:
        raise refuse("which is not a file in the package")
    if target.kind != "file":
        raise refuse("which is not a regular file")
    member.link_parts = parts
    member.link_member = target


# --- writing ------------------------------------------------------------------------------------


def _extract(entries: list[_Member], reader: _Reader, root: Path, limits: PackageLimits) -> None:
    writer = _Writer(root, limits)
    try:
        for member in entries:
            if member.kind == "dir":
                writer.make_folder(member)
            elif member.kind == "file":
                with contextlib.closing(reader.chunks(member)) as chunks:
                    writer.write_file(member, chunks, executable=member.executable)
            elif member.kind == "hardlink":
                target = member.link_member
                with contextlib.closing(writer.read_back(target)) as chunks:
                    writer.write_file(member, chunks, executable=target.executable)
            else:
                writer.make_symlink(member)
        for member in entries:
            if member.kind == "symlink":
                writer.check_symlink(member)
    finally:
        writer.close()


class _Writer:
    """Creates entries strictly inside `root`: every folder is opened relative to its parent's
    file descriptor with O_NOFOLLOW, every file is created with O_EXCL|O_NOFOLLOW, so neither a
    symlink nor a name can redirect a write."""

    def __init__(self, root: Path, limits: PackageLimits):
        self.root = str(root)
        self.limits = limits
        self.written = 0
        self.root_fd = os.open(self.root, _OPEN_DIR)

    def close(self) -> None:
        os.close(self.root_fd)

    def _inside(self, member: _Member) -> None:
        path = os.path.normpath(os.path.join(self.root, *member.parts))
        if not path.startswith(self.root + os.sep):
            raise PackageError(f"member {_show(member.name)} would be outside the package")

    @contextlib.contextmanager
    def _folder(self, member: _Member, parts: tuple[str, ...]) -> Iterator[int]:
        fd = os.dup(self.root_fd)
        try:
            for part in parts:
                created = True
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    created = False
                try:
                    child = os.open(part, _OPEN_DIR, dir_fd=fd)
                except OSError as exc:
                    raise PackageError(
                        f"member {_show(member.name)} cannot be created: {exc.strerror}"
                    ) from exc
                os.close(fd)
                fd = child
                if created:
                    os.fchmod(fd, 0o755)
            yield fd
        finally:
            os.close(fd)

    def make_folder(self, member: _Member) -> None:
        self._inside(member)
        with self._folder(member, member.parts):
            pass

    def write_file(self, member: _Member, chunks: Iterator[bytes], *, executable: bool) -> None:
        self._inside(member)
        with self._folder(member, member.parts[:-1]) as folder:
            try:
                fd = os.open(member.parts[-1], _OPEN_NEW_FILE, 0o600, dir_fd=folder)
            except FileExistsError as exc:
                raise PackageError(f"member {_show(member.name)} appears more than once") from exc
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    self.written += len(chunk)
                    if self.written > self.limits.max_expanded_bytes:
                        raise _too_big(self.limits, member.name)
                    out.write(chunk)
                os.fchmod(out.fileno(), 0o755 if executable else 0o644)

    def read_back(self, member: _Member) -> Iterator[bytes]:
        """The content of a file already written (the target of a hard link)."""
        with self._folder(member, member.parts[:-1]) as folder:
            fd = os.open(member.parts[-1], _OPEN_READ, dir_fd=folder)
        with os.fdopen(fd, "rb") as src:
            while chunk := src.read(_CHUNK):
                yield chunk

    def make_symlink(self, member: _Member) -> None:
        self._inside(member)
        with self._folder(member, member.parts[:-1]) as folder:
            os.symlink(member.link, member.parts[-1], dir_fd=folder)

    def check_symlink(self, member: _Member) -> None:
        """Defence in depth: the kernel's own resolution of every link, now that all exist."""
        real = os.path.realpath(os.path.join(self.root, *member.parts))
        if real != self.root and not real.startswith(self.root + os.sep):
            raise PackageError(
                f"member {_show(member.name)} is a symlink to {_show(member.link)}, which "
                "points outside the package"
            )


def _empty_folder(root: Path) -> None:
    with os.scandir(root) as listing:
        items = list(listing)
    for item in items:
        if item.is_dir(follow_symlinks=False):
            shutil.rmtree(item.path)
        else:
            os.unlink(item.path)


# --- small helpers ------------------------------------------------------------------------------


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


def _basename(name: str) -> str:
    return re.split(r"[/\\]", name)[-1]


def _model_file_name(name: str) -> str:
    """A safe name for a bare model file: its basename, reduced to [A-Za-z0-9._-]."""
    stem, _, suffix = _basename(name).rpartition(".")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:100] or "model"
    return f"{stem}.{suffix.lower()}"


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, _OPEN_READ)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
