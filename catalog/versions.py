"""Semantic versions and the resolver for every version form of the v1 API:
exact `1.2.3`; partial `1.2`, `1.2.*`, `1`, `1.*`; `latest` or none; `latestPrivate`;
a build hash (owners only)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from marketplace.core.change_feed import TableCache, frozen, thawed
from marketplace.core.errors import InputError, NotFoundError

from .models import Build, BuildStatus, Model, Version
from .selectors import visible_versions

_EXACT = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_PARTIAL = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.\*)?$|^(\d+)\.\*$")
_HASH = re.compile(r"^[0-9a-f]{12,64}$")
LATEST = "latest"
LATEST_PRIVATE = "latestPrivate"


@dataclass(frozen=True)
class VersionSpec:
    kind: str  # latest | latest_private | exact | partial | hash
    major: int | None = None
    minor: int | None = None
    patch: int | None = None
    build_hash: str = ""

    def __str__(self) -> str:
        if self.kind == "exact":
            return f"{self.major}.{self.minor}.{self.patch}"
        if self.kind == "partial":
            return f"{self.major}.{self.minor}.*" if self.minor is not None else f"{self.major}.*"
        if self.kind == "hash":
            return self.build_hash
        return LATEST_PRIVATE if self.kind == "latest_private" else LATEST


def parse_version_spec(raw: str | None) -> VersionSpec:
    raw = (raw or "").strip()
    if raw in ("", LATEST):
        return VersionSpec("latest")
    if raw == LATEST_PRIVATE:
        return VersionSpec("latest_private")
    if match := _EXACT.match(raw):
        major, minor, patch = (int(g) for g in match.groups())
        return VersionSpec("exact", major, minor, patch)
    # Before the partial versions: a build hash (or its 12+ character prefix) can be all
    # digits, about one prefix in 300, and no major version is that long.
    if _HASH.match(raw):
        return VersionSpec("hash", build_hash=raw)
    if match := _PARTIAL.match(raw):
        major = match.group(1) or match.group(3)
        minor = match.group(2)
        return VersionSpec("partial", int(major), int(minor) if minor is not None else None)
    raise InputError(
        f"{raw!r} is not a version: use 1.2.3, 1.2, 1.2.*, 1, 1.*, latest, latestPrivate "
        "or a build hash"
    )


@dataclass(frozen=True)
class Target:
    """What a call runs: a build, and the published version it is, if any."""

    model: Model
    build: Build
    version: Version | None

    @property
    def label(self) -> str:
        return self.version.number if self.version else self.build.short_hash


_resolved = TableCache("versions", {"catalog_version", "catalog_build"}, max_entries=16384)


def resolve_version(model: Model, raw: str | None, *, is_member: bool) -> Target:
    """The build a call to `model` at version `raw` runs, for a caller who is (or is not) a
    member of the model's owner namespace. Anything the caller may not see is reported as
    not existing. Each call gets its own instances (the rows may be remembered, see
    core/change_feed.py)."""

    def load():
        target = _resolve(model, raw, is_member=is_member)
        return frozen(target.build), frozen(target.version) if target.version else None

    build_snapshot, version_snapshot = _resolved.get((model.pk, raw or "", is_member), load)
    build = thawed(build_snapshot)
    build._state.fields_cache["model"] = model
    version = None
    if version_snapshot is not None:
        version = thawed(version_snapshot)
        version._state.fields_cache.update(build=build, model=model)
    return Target(model, build, version)


def _resolve(model: Model, raw: str | None, *, is_member: bool) -> Target:
    spec = parse_version_spec(raw)
    name = model.full_name
    if spec.kind in ("latest_private", "hash"):
        if not is_member:
            raise NotFoundError(f"{name}: {spec} is only available to the model's owners")
        builds = Build.objects.filter(model=model, status=BuildStatus.SUCCEEDED)
        if spec.kind == "hash":
            builds = builds.filter(package_hash__startswith=spec.build_hash)
            matches = list(builds[:2])
            if len(matches) > 1:
                raise InputError(f"{name}: build hash {spec.build_hash} is ambiguous; give more")
        build = builds.order_by("-created_at").first()
        if build is None:
            what = f"build {spec.build_hash}" if spec.kind == "hash" else "successful build"
            raise NotFoundError(f"{name} has no {what}")
        version = Version.objects.filter(build=build).order_by("-major", "-minor", "-patch").first()
        return Target(model, build, version)

    versions = visible_versions(model, is_member=is_member)
    if spec.kind == "exact":
        versions = versions.filter(major=spec.major, minor=spec.minor, patch=spec.patch)
    elif spec.kind == "partial":
        versions = versions.filter(major=spec.major)
        if spec.minor is not None:
            versions = versions.filter(minor=spec.minor)
    version = versions.first()
    if version is None:
        if spec.kind == "latest":
            raise NotFoundError(f"{name} has no published version")
        raise NotFoundError(f"{name} has no version matching {spec}")
    return Target(model, version.build, version)


def next_version(previous: tuple[int, int, int] | None, bump: str) -> tuple[int, int, int]:
    if bump not in ("major", "minor", "patch"):
        raise InputError("bump: must be major, minor or patch", fields={"bump": ["invalid"]})
    if previous is None:
        return {"major": (1, 0, 0), "minor": (0, 1, 0), "patch": (0, 0, 1)}[bump]
    major, minor, patch = previous
    if bump == "major":
        return (major + 1, 0, 0)
    if bump == "minor":
        return (major, minor + 1, 0)
    return (major, minor, patch + 1)
