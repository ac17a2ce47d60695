"""Turning a model folder into an upload: a deterministic zip, and a multipart/form-data body."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import stat
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .client import CliError, UsageError

IGNORED_DIRS = frozenset({".git", "__pycache__", ".venv", "node_modules"})
IGNORED_FILES = frozenset({".DS_Store", ".git"})
IGNORED_SUFFIXES = (".pyc",)
# Files uploaded as they are (the server recognises each format).
ARCHIVE_TYPES = {
    ".zip": "application/zip",
    ".tar.gz": "application/gzip",
    ".tgz": "application/gzip",
    ".onnx": "application/octet-stream",
    ".skops": "application/octet-stream",
}
# Every entry gets the same timestamp, so the same folder always gives the same bytes, and the
# server (which identifies a build by the hash of its package) sees the same package.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_UNIX = 3


class PackageError(CliError):
    pass


def _ignored(name: str, is_dir: bool) -> bool:
    if is_dir:
        return name in IGNORED_DIRS
    return name in IGNORED_FILES or name.endswith(IGNORED_SUFFIXES)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _symlink_target(link: Path, root: str, arcname: str) -> str:
    """The relative target to store for a symlink inside the folder, or PackageError when it
    leads out of the folder, nowhere, or into a folder that is not uploaded."""
    target = os.readlink(link)
    real = os.path.realpath(link)
    if not _inside(real, root):
        raise PackageError(
            f"{arcname} is a symlink to {target}, outside the model folder: "
            "copy the file into the folder instead (symlinks out of it are never followed)"
        )
    if not os.path.exists(real):
        raise PackageError(f"{arcname} is a broken symlink (to {target})")
    relative_to_root = os.path.relpath(real, root)
    parts = Path(relative_to_root).parts
    if any(_ignored(part, is_dir=True) for part in parts[:-1]) or (
        parts and _ignored(parts[-1], is_dir=os.path.isdir(real))
    ):
        raise PackageError(
            f"{arcname} is a symlink to {target}, which is not uploaded "
            f"({', '.join(sorted(IGNORED_DIRS))} and *.pyc are left out)"
        )
    parent_real = os.path.realpath(link.parent)
    return Path(os.path.relpath(real, parent_real)).as_posix()


def zip_folder(path: str | os.PathLike) -> bytes:
    """Zip a model folder in memory.

    Leaves out `.git`, `__pycache__`, `.venv`, `node_modules`, `*.pyc` and `.DS_Store`; keeps
    the executable bit (entries are 0755 or 0644 in the Unix external attributes); stores a
    symlink that stays inside the folder as a symlink (mode S_IFLNK, its relative target as
    content) and refuses one that leads out of it. The result is deterministic: sorted entries,
    fixed timestamps."""
    root_path = Path(path)
    if not root_path.is_dir():
        raise PackageError(f"{path} is not a folder")
    root = os.path.realpath(root_path)
    buffer = io.BytesIO()
    count = 0

    def fail(exc: OSError) -> None:
        raise PackageError(f"cannot read {exc.filename}: {exc.strerror or exc}")

    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for current, dirnames, filenames in os.walk(root, onerror=fail, followlinks=False):
            here = Path(current)
            rel_dir = Path(os.path.relpath(current, root))
            entries = []
            for name in list(dirnames):
                full = here / name
                if _ignored(name, is_dir=True):
                    dirnames.remove(name)
                elif full.is_symlink():
                    dirnames.remove(name)
                    entries.append(name)
            dirnames.sort()
            entries.extend(name for name in filenames if not _ignored(name, is_dir=False))
            for name in sorted(entries):
                full = here / name
                arcname = (rel_dir / name).as_posix().removeprefix("./")
                try:
                    info = os.lstat(full)
                except OSError as exc:
                    fail(exc)
                if stat.S_ISLNK(info.st_mode):
                    target = _symlink_target(full, root, arcname)
                    entry = zipfile.ZipInfo(arcname, date_time=ZIP_DATE_TIME)
                    entry.create_system = _UNIX
                    entry.external_attr = (stat.S_IFLNK | 0o777) << 16
                    entry.compress_type = zipfile.ZIP_STORED
                    archive.writestr(entry, target.encode("utf-8"))
                elif stat.S_ISREG(info.st_mode):
                    mode = 0o755 if info.st_mode & 0o111 else 0o644
                    entry = zipfile.ZipInfo(arcname, date_time=ZIP_DATE_TIME)
                    entry.create_system = _UNIX
                    entry.external_attr = (stat.S_IFREG | mode) << 16
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.file_size = info.st_size
                    try:
                        with open(full, "rb") as src, archive.open(entry, "w") as dst:
                            shutil.copyfileobj(src, dst, 1024 * 1024)
                    except OSError as exc:
                        fail(exc)
                else:
                    continue  # sockets, FIFOs, devices: nothing a model can ship
                count += 1
    if not count:
        raise PackageError(f"{path} has no files to publish")
    return buffer.getvalue()


def archive_type(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, content_type in ARCHIVE_TYPES.items():
        if name.endswith(suffix):
            return content_type
    return None


def build_package(path: str | os.PathLike) -> tuple[str, bytes, str]:
    """(filename, bytes, content type) to upload for DIR: a folder zipped, or an archive or
    model file as it is."""
    source = Path(path)
    if source.is_dir():
        name = Path(os.path.realpath(source)).name or "model"
        return f"{name}.zip", zip_folder(source), "application/zip"
    if source.is_file():
        content_type = archive_type(source)
        if content_type is None:
            raise UsageError(
                f"{path} is neither a folder nor a package: expected a model folder or a "
                f"{', '.join(ARCHIVE_TYPES)} file"
            )
        try:
            return source.name, source.read_bytes(), content_type
        except OSError as exc:
            raise PackageError(f"cannot read {path}: {exc.strerror or exc}") from None
    raise UsageError(f"{path}: no such folder or file")


def _quote(value: str) -> str:
    # What browsers do for names in Content-Disposition (WHATWG multipart/form-data encoding).
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(
    fields: Mapping[str, str] | Iterable[tuple[str, str]],
    files: Mapping[str, tuple[str, bytes, str]] | Iterable[tuple[str, tuple[str, bytes, str]]],
) -> tuple[str, bytes]:
    """Encode a multipart/form-data body: `fields` are text (name -> value), `files` are
    name -> (filename, content, content type). Returns (Content-Type header, body)."""
    field_items = list(fields.items() if isinstance(fields, Mapping) else fields)
    file_items = list(files.items() if isinstance(files, Mapping) else files)
    contents = [value.encode("utf-8") for _, value in field_items]
    contents += [content for _, (_, content, _) in file_items]
    while True:
        boundary = f"marketplace-{secrets.token_hex(16)}"
        marker = boundary.encode("ascii")
        if not any(marker in content for content in contents):
            break
    out = bytearray()
    for name, value in field_items:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
        ).encode()
        out += value.encode("utf-8") + b"\r\n"
    for name, (filename, content, content_type) in file_items:
        out += (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{_quote(name)}"; '
            f'filename="{_quote(filename)}"\r\n'
            f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n"
        ).encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return f"multipart/form-data; boundary={boundary}", bytes(out)
