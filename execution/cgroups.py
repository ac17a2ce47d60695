"""A control group per model process: caps the process count and the memory of its whole
tree (whatever it forks, and however it allocates), kills all of it at once, and tells us
when the kernel killed part of it for memory.

Where: in a `marketplace` child of the cgroup the platform itself runs in, one directory
per model process (`/sys/fs/cgroup/pids/<own cgroup>/marketplace/<id>` with cgroup v1,
`/sys/fs/cgroup/<own cgroup>/marketplace/<id>` with cgroup v2), so whatever limits the
platform runs under keep applying to its models. SANDBOX_CGROUP_PARENT names another parent
(a cgroup path, e.g. a systemd unit with `Delegate=yes`). Each controller is used from the
hierarchy that has it: on "hybrid" hosts pids and memory are v1 hierarchies while the
unified (v2) tree holds none.

The child enters its cgroup between fork and exec (`enter()`, from preexec_fn), so the model
runs nothing outside it, and neither does anything it starts.

Degrades: when no controller can be used (not root, no delegation, a cgroup v2 parent that
has processes of its own, SANDBOX_CGROUPS=off), models run without cgroups; rlimits still
apply, and `cgroup_support().message` (shown by /readyz) says what is not capped.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

CONTROLLERS = ("pids", "memory", "cpu")
GROUP_NAME = "marketplace"


class CgroupError(Exception):
    pass


@dataclass(frozen=True)
class Hierarchy:
    """One cgroup hierarchy in use: its version, the controllers taken from it, and the
    directory of the parent cgroup the model cgroups are made under (in `marketplace/`)."""

    version: int
    parent: Path
    controllers: tuple[str, ...]

    @property
    def base(self) -> Path:
        return self.parent / GROUP_NAME


@dataclass(frozen=True)
class CgroupSupport:
    hierarchies: tuple[Hierarchy, ...]
    message: str

    @property
    def controllers(self) -> tuple[str, ...]:
        return tuple(c for h in self.hierarchies for c in h.controllers)

    @property
    def enabled(self) -> bool:
        return bool(self.hierarchies)

    @property
    def engine(self) -> str:
        versions = sorted({h.version for h in self.hierarchies})
        return "cgroup-" + "+".join(f"v{v}" for v in versions) if versions else ""


# -- where the controllers are ------------------------------------------------------------


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def locate_controllers(
    proc_cgroup: str, mountinfo: str, *, parent: str = ""
) -> dict[str, tuple[int, Path]]:
    """Where each of CONTROLLERS can be used, from the texts of /proc/self/cgroup and
    /proc/self/mountinfo: {controller: (version, directory of the parent cgroup)}. The
    parent is our own cgroup in that hierarchy unless `parent` names one. A v2 controller
    is listed only if it is bound to the unified hierarchy at all; whether it can be
    enabled for children is found out by trying."""
    own_v1: dict[str, str] = {}
    own_v2: str | None = None
    for line in proc_cgroup.splitlines():
        hierarchy_id, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy_id == "0" and controllers == "":
            own_v2 = path
        else:
            for controller in controllers.split(","):
                own_v1[controller] = path

    v1_mounts: dict[str, tuple[str, str]] = {}
    v2_mount: tuple[str, str] | None = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        if tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in CONTROLLERS and option not in v1_mounts:
                    v1_mounts[option] = (root, mount_point)
        elif tail[0] == "cgroup2" and v2_mount is None:
            v2_mount = (root, mount_point)

    def directory(mount: tuple[str, str], own: str) -> Path | None:
        root, mount_point = mount
        wanted = parent or own
        if not parent:
            # Our own cgroup, relative to what this mount shows of the hierarchy.
            relative = os.path.relpath(own, root)
            if relative.startswith(".."):
                return None
            wanted = "" if relative == "." else relative
        return Path(mount_point) / wanted.lstrip("/")

    found: dict[str, tuple[int, Path]] = {}
    for controller in CONTROLLERS:
        if controller in v1_mounts and controller in own_v1:
            path = directory(v1_mounts[controller], own_v1[controller])
            if path is not None:
                found[controller] = (1, path)
        elif v2_mount is not None and own_v2 is not None:
            path = directory(v2_mount, own_v2)
            available = _read(Path(v2_mount[1]) / "cgroup.controllers").split()
            if path is not None and controller in available:
                found[controller] = (2, path)
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str | int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _enable_v2_controllers(directory: Path, controllers: tuple[str, ...]) -> None:
    enabled = _read(directory / "cgroup.subtree_control").split()
    missing = [c for c in controllers if c not in enabled]
    if missing:
        _write(directory / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))


def _make_base(hierarchy: Hierarchy) -> None:
    if hierarchy.version == 2:
        _enable_v2_controllers(hierarchy.parent, hierarchy.controllers)
    with contextlib.suppress(FileExistsError):
        os.mkdir(hierarchy.base)
    if hierarchy.version == 2:
        _enable_v2_controllers(hierarchy.base, hierarchy.controllers)


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _cgroup_name() -> str:
    """`<pid namespace>-<pid of the platform process>-<random>`: enough to tell, later, that
    the process that made it is gone."""
    return f"{_pid_namespace()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def remove_stale_cgroups(hierarchy: Hierarchy) -> int:
    """Remove the model cgroups that platform processes of our PID namespace left behind
    when they died without stopping their models, killing what still runs in them (models
    started without bubblewrap outlive the platform). Returns how many were removed."""
    namespace = str(_pid_namespace())
    removed = 0
    try:
        entries = list(os.scandir(hierarchy.base))
    except OSError:
        return 0
    for entry in entries:
        parts = entry.name.split("-")
        if not entry.is_dir() or len(parts) != 3 or parts[0] != namespace:
            continue
        with contextlib.suppress(ValueError):
            creator = int(parts[1])
            if creator == os.getpid() or os.path.exists(f"/proc/{creator}"):
                continue
            stale = ModelCgroup(
                {c: (hierarchy.version, Path(entry.path)) for c in hierarchy.controllers}
            )
            stale.remove(timeout=1.0, remove_base=False)
            removed += 1
    if removed:
        logger.info(
            "removed %d model cgroups left by dead processes in %s", removed, hierarchy.base
        )
    return removed


@functools.cache
def _probe(parent: str) -> CgroupSupport:
    try:
        located = locate_controllers(
            Path("/proc/self/cgroup").read_text(),
            Path("/proc/self/mountinfo").read_text(),
            parent=parent,
        )
    except OSError as exc:
        return CgroupSupport((), f"cannot read this process's cgroups: {exc}")
    if not located:
        return CgroupSupport((), "no pids, memory or cpu cgroup controller is mounted")
    grouped: dict[tuple[int, Path], list[str]] = {}
    for controller, key in located.items():
        grouped.setdefault(key, []).append(controller)
    usable, problems = [], []
    for (version, directory), controllers in grouped.items():
        hierarchy = Hierarchy(version, directory, tuple(controllers))
        try:
            _make_base(hierarchy)
            remove_stale_cgroups(hierarchy)
            probe = ModelCgroup.create_in((hierarchy,), name=_cgroup_name())
            probe.remove()
        except (OSError, CgroupError) as exc:
            problems.append(f"{'/'.join(controllers)} (cgroup v{version}): {exc}")
            continue
        usable.append(hierarchy)
    missing = [c for c in ("pids", "memory") if c not in {c for h in usable for c in h.controllers}]
    parts = []
    if usable:
        parts.append(
            "cgroups for "
            + ", ".join(f"{'+'.join(h.controllers)} (v{h.version}, {h.base})" for h in usable)
        )
    if missing:
        parts.append(
            f"no cgroup for {' and '.join(missing)}, so "
            + " and ".join(
                {"pids": "the process count", "memory": "the total memory"}[c] for c in missing
            )
            + " of a model is not capped"
        )
    if problems:
        parts.append("unusable: " + "; ".join(problems))
    message = "; ".join(parts)
    if missing:
        logger.warning("model processes: %s", message)
    return CgroupSupport(tuple(usable), message)


def cgroup_support() -> CgroupSupport:
    """What cgroups model processes get on this host (probed once per process).
    SANDBOX_CGROUPS: auto (use what works), off, or required (refuse to start models
    without the pids and memory controllers)."""
    mode = getattr(settings, "SANDBOX_CGROUPS", "auto")
    if mode == "off":
        return CgroupSupport((), "cgroups turned off by SANDBOX_CGROUPS=off")
    support = _probe(getattr(settings, "SANDBOX_CGROUP_PARENT", "") or "")
    if mode == "required" and not {"pids", "memory"} <= set(support.controllers):
        raise CgroupError(f"SANDBOX_CGROUPS=required but {support.message}")
    return support


# -- one model process's cgroup -----------------------------------------------------------


class ModelCgroup:
    """The cgroup (one directory per hierarchy) of one model process and its descendants."""

    def __init__(self, directories: dict[str, tuple[int, Path]]):
        # controller -> (version, directory); every directory appears once in _directories
        self._controllers = directories
        self._directories: list[tuple[int, Path]] = sorted(set(directories.values()))
        self._procs_files = [str(path / "cgroup.procs") for _version, path in self._directories]
        self.memory_limit: int | None = None
        self._oom_lock = threading.Lock()
        self._oom_fd: int | None = None
        self._removed = False
        self._oom_kills_at_removal = 0

    @classmethod
    def create(cls, limits, *, support: CgroupSupport) -> ModelCgroup:
        """A new cgroup with these limits (a sandbox.ResourceLimits)."""
        name = _cgroup_name()
        hierarchies = [
            h
            for h in support.hierarchies
            if getattr(limits, "cpus", None) or set(h.controllers) != {"cpu"}
        ]
        group = cls.create_in(hierarchies, name=name)
        try:
            group.set_limits(limits)
        except OSError as exc:
            group.remove()
            raise CgroupError(f"cannot set the model's cgroup limits: {exc}") from exc
        return group

    @classmethod
    def create_in(cls, hierarchies, *, name: str) -> ModelCgroup:
        directories: dict[str, tuple[int, Path]] = {}
        made: list[Path] = []
        try:
            for hierarchy in hierarchies:
                path = hierarchy.base / name
                for attempt in range(3):
                    try:
                        os.mkdir(path)
                        break
                    except FileNotFoundError:
                        # The shared `marketplace` group was removed when it was last empty.
                        if attempt == 2:
                            raise
                        _make_base(hierarchy)
                made.append(path)
                for controller in hierarchy.controllers:
                    directories[controller] = (hierarchy.version, path)
        except OSError as exc:
            for path in made:
                with contextlib.suppress(OSError):
                    os.rmdir(path)
            raise CgroupError(f"cannot create a cgroup for the model: {exc}") from exc
        return cls(directories)

    @property
    def paths(self) -> list[Path]:
        return [path for _version, path in self._directories]

    def set_limits(self, limits) -> None:
        if "pids" in self._controllers:
            _write(self._file("pids", "pids.max"), limits.processes)
        if "memory" in self._controllers:
            version = self._controllers["memory"][0]
            if version == 1:
                _write(self._file("memory", "memory.limit_in_bytes"), limits.memory_bytes)
                with contextlib.suppress(OSError):  # only with swap accounting
                    _write(self._file("memory", "memory.memsw.limit_in_bytes"), limits.memory_bytes)
            else:
                _write(self._file("memory", "memory.max"), limits.memory_bytes)
                with contextlib.suppress(OSError):  # only with swap
                    _write(self._file("memory", "memory.swap.max"), 0)
                # An out-of-memory kill takes the whole model, not just one of its processes.
                with contextlib.suppress(OSError):
                    _write(self._file("memory", "memory.oom.group"), 1)
            self.memory_limit = limits.memory_bytes
        cpus = getattr(limits, "cpus", None)
        if cpus and "cpu" in self._controllers:
            if self._controllers["cpu"][0] == 1:
                period = int(_read(self._file("cpu", "cpu.cfs_period_us")).strip() or 100000)
                _write(self._file("cpu", "cpu.cfs_quota_us"), max(1000, int(cpus * period)))
            else:
                _write(self._file("cpu", "cpu.max"), f"{max(1000, int(cpus * 100000))} 100000")

    def has(self, controller: str) -> bool:
        return controller in self._controllers

    def enter(self) -> None:
        """Move the calling process into this cgroup. Runs in the child between fork and
        exec, so it only makes system calls."""
        pid = str(os.getpid()).encode()
        for procs in self._procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for _version, path in self._directories:
            found.update(int(p) for p in _read(path / "cgroup.procs").split())
        return found

    def memory_usage(self) -> int | None:
        """Bytes of memory the process tree uses now (None without the memory cgroup)."""
        if "memory" not in self._controllers:
            return None
        version, path = self._controllers["memory"]
        text = _read(path / ("memory.usage_in_bytes" if version == 1 else "memory.current"))
        return int(text) if text.strip() else None

    def oom_kills(self) -> int:
        """How many processes of this cgroup the kernel killed for memory so far. Cheap
        (a few microseconds): it is read around every call."""
        if "memory" not in self._controllers:
            return 0
        with self._oom_lock:
            if self._oom_fd is None:
                if self._removed:
                    return self._oom_kills_at_removal
                version, path = self._controllers["memory"]
                name = "memory.oom_control" if version == 1 else "memory.events"
                try:
                    self._oom_fd = os.open(path / name, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return 0
            try:
                text = os.pread(self._oom_fd, 4096, 0).decode()
            except OSError:
                return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def kill(self, *, timeout: float = 5.0) -> bool:
        """SIGKILL every process in the cgroup, including any forked meanwhile; True once
        it is empty."""
        for version, path in self._directories:
            if version == 2 and (path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    _write(path / "cgroup.kill", 1)
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                logger.warning("processes %s outlived SIGKILL in %s", sorted(pids), self.paths)
                return False
            time.sleep(0.002)

    def remove(self, *, timeout: float = 2.0, remove_base: bool = True) -> None:
        """Kill what is left and remove the cgroup (and the shared `marketplace` group
        when it is left empty)."""
        self.kill(timeout=timeout)
        kills = self.oom_kills()
        with self._oom_lock:
            self._removed, self._oom_kills_at_removal = True, kills
            if self._oom_fd is not None:
                os.close(self._oom_fd)
                self._oom_fd = None
        deadline = time.monotonic() + timeout
        for _version, path in self._directories:
            while True:
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    # Busy while the last processes are being reaped.
                    if time.monotonic() > deadline:
                        logger.warning("cannot remove the model cgroup %s: %s", path, exc)
                        break
                    self.kill(timeout=0)
                    time.sleep(0.005)
            if remove_base:
                with contextlib.suppress(OSError):
                    os.rmdir(path.parent)

    def _file(self, controller: str, name: str) -> Path:
        return self._controllers[controller][1] / name
