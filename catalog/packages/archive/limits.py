"""What a package may be: the limits of one, the folders never part of one, and the constants
the reader, the planner and the writer share."""

from __future__ import annotations

import os
from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB

# Folders that are never part of a package, in a folder or in an archive.
SKIPPED_NAMES = frozenset({".git", "__pycache__"})

_CHUNK = 256 * KiB
_MAX_SYMLINK_TARGET = 1024  # characters; longer targets are refused
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class PackageLimits:
    max_upload_bytes: int = 200 * MiB  # the archive or file as uploaded
    max_expanded_bytes: int = 500 * MiB  # sum of the sizes of the extracted files
    max_files: int = 5000  # entries in the archive (files, folders, links)
    max_depth: int = 32  # path components of the deepest entry


DEFAULT_LIMITS = PackageLimits()
