"""Writing a planned package: files created through directory file descriptors with
O_NOFOLLOW|O_EXCL and fixed modes, counting the bytes actually written against the limit;
symlinks last, checked again with the kernel's own resolution; and emptying the destination
again when anything fails."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import PackageError, _show, _too_big
from .limits import _CHUNK, _OPEN_READ, PackageLimits
from .members import _Member, _Reader

_OPEN_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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
