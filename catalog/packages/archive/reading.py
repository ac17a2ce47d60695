"""Reading packages: a zip, a tar (plain or compressed; bounded so a tar bomb costs neither
unbounded time nor memory), a folder, or a bare model file, each listed as `_Member`s whose
bytes the writer then asks for. The reader is chosen by content, not only by name."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import (
    PackageError,
    _human_bytes,
    _read_errors,
    _show,
    _too_big,
    _too_deep,
    _too_many_entries,
)
from .limits import _CHUNK, _MAX_SYMLINK_TARGET, _OPEN_READ, SKIPPED_NAMES, KiB, MiB, PackageLimits
from .members import _Member, _Reader

# Standard model formats that are uploaded as a single file and kept as it is.
MODEL_FILE_SUFFIXES = (".onnx", ".skops")

_MAX_TAR_HEADER_READ = 1 * MiB  # pax/GNU long-name headers larger than this are refused
_TAR_OVERHEAD_PER_ENTRY = 8 * KiB  # headers and padding allowed on top of the file bytes


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


def _basename(name: str) -> str:
    return re.split(r"[/\\]", name)[-1]


def _model_file_name(name: str) -> str:
    """A safe name for a bare model file: its basename, reduced to [A-Za-z0-9._-]."""
    stem, _, suffix = _basename(name).rpartition(".")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:100] or "model"
    return f"{stem}.{suffix.lower()}"
