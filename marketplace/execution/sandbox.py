"""How model processes are confined on this host.

Three layers, each used when available:

- bubblewrap (`bwrap`): the model sees only the system libraries, its package (at /model),
  its environment and the platform's shims, all read-only; the root is read-only too; its
  /tmp is its own (a fresh host directory, deleted when the process stops); no network
  unless the manifest says `network = true`; its own PID, IPC, UTS, user and cgroup
  namespaces, no capabilities, none of the platform's environment variables, and it dies
  with the platform.
- a cgroup per model process (see cgroups.py): the process count (pids) and the memory of
  the whole tree, however it forks, optionally a CPU quota; one kill takes all of it.
- rlimits, always: open files, file size, core dumps off, CPU seconds when set, and the
  data size when there is no memory cgroup.

Without bubblewrap (SANDBOX=off, or bwrap missing or unable to create namespaces) a model
runs as the platform's own user, in its package directory, with only the cgroup and the
rlimits: it can read whatever that user can read (the database socket and credentials
included), use the network, write outside its /tmp and see other processes. Its
environment is still only the variables the platform gives it. That is acceptable only
for models you trust, and /readyz says the sandbox is off.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from .cgroups import CgroupError, cgroup_support


@dataclass(frozen=True)
class SandboxStatus:
    enabled: bool
    engine: str
    message: str
    # Whether model processes get the pids and memory cgroups (process count and total
    # memory capped); without them the sandbox works but is weaker.
    cgroups: bool = False


@functools.cache
def _probe_bubblewrap() -> tuple[bool, str]:
    path = shutil.which("bwrap")
    if path is None:
        return False, "bubblewrap (bwrap) is not installed; models run with resource limits only"
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv
            [path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap did not run: {exc}"
    if result.returncode != 0:
        return False, f"bubblewrap cannot create namespaces here: {result.stderr.strip()}"
    return True, f"bubblewrap at {path}"


def sandbox_enabled() -> bool:
    if settings.SANDBOX == "off":
        return False
    works, message = _probe_bubblewrap()
    if settings.SANDBOX == "bubblewrap" and not works:
        raise RuntimeError(f"SANDBOX=bubblewrap but {message}")
    return works


def sandbox_status() -> SandboxStatus:
    try:
        cgroups = cgroup_support()
        cgroups_message, has_cgroups = (
            cgroups.message,
            {"pids", "memory"} <= set(cgroups.controllers),
        )
        cgroups_engine = cgroups.engine
    except CgroupError as exc:
        cgroups_message, has_cgroups, cgroups_engine = str(exc), False, ""
    suffix = f"+{cgroups_engine}" if cgroups_engine else ""
    if settings.SANDBOX == "off":
        return SandboxStatus(
            False,
            "rlimits" + suffix,
            f"sandbox turned off by SANDBOX=off; {cgroups_message}",
            has_cgroups,
        )
    works, message = _probe_bubblewrap()
    if works:
        return SandboxStatus(
            True, "bubblewrap" + suffix, f"{message}; {cgroups_message}", has_cgroups
        )
    return SandboxStatus(False, "rlimits" + suffix, f"{message}; {cgroups_message}", has_cgroups)


def _setting(name: str, default):
    return getattr(settings, name, default) if settings.configured else default


def _default(name: str, value):
    return field(default_factory=lambda: _setting(name, value))


@dataclass(frozen=True)
class ResourceLimits:
    """Limits of one model process and everything it starts. Defaults come from the
    settings named beside each field.

    memory_bytes caps the memory of the whole process tree through the memory cgroup (the
    kernel kills the model when it is over, and the caller is told so); without that
    cgroup it is RLIMIT_DATA per process (private writable memory: allocations fail with
    MemoryError and the like). processes caps processes and threads through the pids
    cgroup; as nothing else can (RLIMIT_NPROC is per user, and not enforced for root), it is
    unlimited without it. cpus is a CPU quota (in CPUs) through the cpu cgroup, if any;
    cpu_seconds kills a process that burnt that much CPU time (RLIMIT_CPU). answer_bytes is
    the largest answer line the platform will read from the model."""

    memory_bytes: int = _default("SANDBOX_MEMORY_BYTES", 2 * 1024**3)
    open_files: int = _default("SANDBOX_OPEN_FILES", 1024)
    cpu_seconds: int | None = _default("SANDBOX_CPU_SECONDS", None)
    file_size_bytes: int = _default("SANDBOX_FILE_SIZE_BYTES", 1024**3)
    processes: int = _default("SANDBOX_PROCESSES", 128)
    cpus: float | None = _default("SANDBOX_CPUS", None)
    answer_bytes: int = _default("SANDBOX_ANSWER_BYTES", 64 * 1024**2)


def format_bytes(count: int) -> str:
    """1073741824 -> "1 GiB", 268435456 -> "256 MiB"."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            value = count / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{count} bytes"


# Inside the sandbox: the package, read-only, is the working directory; /tmp is private.
SANDBOX_PACKAGE_DIR = "/model"
SANDBOX_SHIMS_DIR = "/opt/marketplace/shims"
SANDBOX_UID = 65534

_SYSTEM_DIRS = (
    "/usr",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/usr/share/zoneinfo",
)
_SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/mime.types",
)


def bubblewrap_argv(
    *, package_dir, tmp_dir, read_only_paths, network: bool, env: dict[str, str]
) -> list[str]:
    """The bwrap prefix that confines a model process: only system libraries, its package,
    its environment and the platform's shims are visible, all read-only, and so is the
    root; /tmp is its own; no network unless the manifest asks for it; its own PID
    namespace, no capabilities, killed with us."""
    argv = [
        shutil.which("bwrap") or "bwrap",
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--clearenv",
    ]
    if network:
        argv.append("--share-net")
    for path in _SYSTEM_DIRS:
        if os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        target = os.path.join("/", name)
        if os.path.islink(target):
            argv += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            argv += ["--ro-bind", target, target]
    for path in _SYSTEM_FILES:
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    # /tmp first: the read-only binds below may live under the host's /tmp and must stay
    # visible on top of the sandbox's private one.
    argv += ["--bind", str(tmp_dir), "/tmp", "--proc", "/proc", "--dev", "/dev"]  # noqa: S108
    seen = set()
    for path in read_only_paths:
        path = str(path)
        if path not in seen and os.path.exists(path):
            seen.add(path)
            argv += ["--ro-bind", path, path]
    shims = Path(__file__).resolve().parent / "shims"
    argv += [
        "--ro-bind",
        str(shims),
        SANDBOX_SHIMS_DIR,
        "--ro-bind",
        str(package_dir),
        SANDBOX_PACKAGE_DIR,
        # Last of the mounts: the root (a tmpfs holding the mount points) turns read-only,
        # so only /tmp and the private /dev stay writable.
        "--remount-ro",
        "/",
        "--chdir",
        SANDBOX_PACKAGE_DIR,
    ]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv


def apply_limits(limits: ResourceLimits, *, limit_data: bool = True) -> None:
    """Called in the child between fork and exec. `limit_data=False` when the memory
    cgroup caps memory instead (precisely, and for the whole tree)."""
    import resource

    if limit_data:
        resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
