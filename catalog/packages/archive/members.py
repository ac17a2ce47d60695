"""What the readers produce and the planner and the writer consume: one entry of a package
(`_Member`), and the interface every reader offers (`_Reader`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


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


class _Reader(Protocol):
    display: str  # the upload's name, for messages
    noun: str  # "member" for archives, "file" for folders
    strip_wrapper: bool  # remove a single top-level folder
    archive: bool

    def members(self) -> Iterator[_Member]: ...

    def chunks(self, member: _Member) -> Iterator[bytes]: ...
