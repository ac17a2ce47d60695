"""Whether model processes can be sandboxed with bubblewrap on this host."""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class SandboxStatus:
    enabled: bool
    engine: str
    message: str


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
    if settings.SANDBOX == "off":
        return SandboxStatus(False, "rlimits", "sandbox turned off by SANDBOX=off")
    works, message = _probe_bubblewrap()
    if works:
        return SandboxStatus(True, "bubblewrap", message)
    return SandboxStatus(False, "rlimits", message)


@dataclass(frozen=True)
class ResourceLimits:
    """Per-process limits. Memory is RLIMIT_DATA (private writable memory), which, unlike
    the address-space limit, does not break runtimes that reserve large virtual ranges."""

    memory_bytes: int = 2 * 1024**3
    open_files: int = 1024
    cpu_seconds: int | None = None
    file_size_bytes: int = 1024**3


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
    its environment and the platform's shims are visible, all read-only; /tmp is its own;
    no network unless the manifest asks for it; its own PID namespace, killed with us."""
    import os

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
    from pathlib import Path as _Path

    shims = _Path(__file__).resolve().parent / "shims"
    argv += [
        "--ro-bind",
        str(shims),
        SANDBOX_SHIMS_DIR,
        "--ro-bind",
        str(package_dir),
        SANDBOX_PACKAGE_DIR,
        "--chdir",
        SANDBOX_PACKAGE_DIR,
    ]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv


def apply_limits(limits: ResourceLimits) -> None:
    """Called in the child between fork and exec."""
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
