"""Planning what is written: which entries, where, of what kind. Every member name is checked
before anything is written (no absolute paths, no `..`, no drive letters or backslashes, no
NUL or control characters); symlinks must resolve inside the package and hard links must
name a file in it; devices, FIFOs and sockets are refused; the nesting depth and the declared
sizes are bounded (the readers bound the number of entries)."""

from __future__ import annotations

import os
import re

from .errors import PackageError, _show, _too_big, _too_deep
from .limits import _MAX_SYMLINK_TARGET, SKIPPED_NAMES, PackageLimits
from .members import _Member, _Reader

# What macOS's "Compress" adds next to the real folder in a zip: resource forks, never content.
MACOS_METADATA = "__MACOSX"

_MAX_SYMLINK_HOPS = 40  # like the kernel's MAXSYMLINKS
_MAX_RESOLVE_STEPS = 4096  # path components walked while resolving one symlink
_DRIVE_RE = re.compile(r"^[A-Za-z]:")

_REFUSED_KINDS = {
    "device": "is a device file; packages may only contain files, folders and links",
    "fifo": "is a FIFO (named pipe); packages may only contain files, folders and links",
    "socket": "is a socket; packages may only contain files, folders and links",
    "other": "has an unsupported type; packages may only contain files, folders and links",
}


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
