"""Isolated environments for model versions, built by the installer inside the sandbox.

The installer (uv) runs confined like a model (see sandbox.py): as an unprivileged user, it
sees the interpreter and itself read-only, writes only the environment being built and its
cache, sees nothing of var/, no platform socket and no secret, and reaches the package
index through the egress proxy only (public addresses, or what the operator allows).

Two kinds of environment, so that no tenant can change another's:

- shared: the requirements install from wheels alone (`--no-build`): no code of anyone's
  runs while it is built, so the same requirements make the same environment, and it is
  keyed by the requirements' hash (and the interpreter) and reused by every owner;
- per owner: when a requirement has no wheel, its source distribution is built (in the
  sandbox, by its own build code), so the result is the owner's alone: keyed by the owner
  too, with the owner's own installer cache.

An environment is built next to its final place and renamed into it only when complete (a
crashed build never leaves a half-made one that a later build would trust); then it is
made the platform's and read-only (and models bind it read-only), so nothing changes it
after its build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .network import egress_socket
from .sandbox import confine, run_unsandboxed, sandbox_enabled, sandbox_owner

Log = Callable[[str], None]


class BuildEnvironmentError(Exception):
    pass


@dataclass(frozen=True)
class PythonEnvironment:
    key: str
    path: Path
    reused: bool

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def read_only_paths(self) -> list[Path]:
        """What a sandbox must expose for this interpreter to run: the environment and the
        base installation it was made from."""
        return [self.path, Path(sys.base_prefix)]


def environments_root() -> Path:
    root = Path(settings.VAR_DIR) / "envs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def normalise_requirements(text: str) -> str:
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return "\n".join(sorted(set(lines)))


def python_environment_key(requirements: str, *, owner: str | None = None) -> str:
    """The shared environment's key (owner None), or the owner's own."""
    interpreter = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
    scope = "shared" if owner is None else f"owner:{owner}"
    digest = hashlib.sha256(
        f"{interpreter}\n{scope}\n{normalise_requirements(requirements)}".encode()
    )
    return f"py-{digest.hexdigest()[:24]}"


def _uv() -> str:
    candidate = Path(sys.executable).parent / "uv"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("uv")
    if found:
        return found
    raise BuildEnvironmentError("uv is not installed next to the platform's Python")


def _base_python() -> str:
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}")


def ensure_python_environment(requirements: str, *, owner: str, log: Log) -> PythonEnvironment:
    """The environment for `requirements`: the shared one when it exists or can be built
    from wheels alone, else `owner`'s own, building source distributions in the sandbox."""
    requirements = normalise_requirements(requirements)
    shared_key = python_environment_key(requirements)
    root = environments_root()
    if (root / shared_key / ".complete").exists():
        log(f"Reusing environment {shared_key}: nothing to install.")
        return PythonEnvironment(shared_key, root / shared_key, reused=True)
    own_key = python_environment_key(requirements, owner=owner)
    if (root / own_key / ".complete").exists():
        log(f"Reusing environment {own_key}: nothing to install.")
        return PythonEnvironment(own_key, root / own_key, reused=True)
    try:
        return _build(root, shared_key, requirements, wheels_only=True, cache="shared", log=log)
    except BuildEnvironmentError:
        if not requirements:
            raise
        log(
            "Installing from wheels alone failed; trying again with source distributions "
            "allowed, built in the sandbox, into an environment of this owner's own."
        )
    owner_digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
    return _build(
        root, own_key, requirements, wheels_only=False, cache=f"owner-{owner_digest}", log=log
    )


def _build(
    root: Path, key: str, requirements: str, *, wheels_only: bool, cache: str, log: Log
) -> PythonEnvironment:
    final = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".complete").exists():
            log(f"Reusing environment {key} (built meanwhile by another build).")
            return PythonEnvironment(key, final, reused=True)
        if final.exists():
            shutil.rmtree(final)
        staging = root / f"{key}.building-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        cache_dir = Path(settings.VAR_DIR) / "cache" / "uv" / cache
        started = time.monotonic()
        log(f"Creating environment {key}")
        try:
            installer = _Installer(staging, cache_dir, log)
            installer.run(
                ["venv", "--quiet", "--allow-existing", "--python", _base_python(), str(staging)]
            )
            if requirements:
                (installer.tmp / "requirements.txt").write_text(requirements + "\n")
                log("Installing requirements:\n  " + requirements.replace("\n", "\n  "))
                installer.run(
                    [
                        "pip",
                        "install",
                        "--python",
                        str(staging / "bin" / "python"),
                        "-r",
                        installer.path_inside(installer.tmp / "requirements.txt"),
                        *(["--no-build"] if wheels_only else []),
                    ],
                    network=True,
                )
            _make_read_only(staging)
            _write_marker(staging / ".complete", requirements)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            if "installer" in locals():
                installer.cleanup()
        log(f"Environment {key} ready in {time.monotonic() - started:.1f}s")
        return PythonEnvironment(key, final, reused=False)


class _Installer:
    """Runs uv confined: writes only `staging` and `cache_dir`, sees its own /tmp."""

    def __init__(self, staging: Path, cache_dir: Path, log: Log):
        self.staging, self.cache_dir, self.log = staging, cache_dir, log
        self.sandboxed = sandbox_enabled()
        self.owner = sandbox_owner()
        staging.mkdir(parents=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="installer-tmp-"))
        for path in (staging, cache_dir, self.tmp):
            if self.owner is not None:
                os.chown(path, *self.owner)
            os.chmod(path, 0o755 if path == staging else 0o700)

    def path_inside(self, path: Path) -> str:
        """Where a file of the installer's /tmp is, as the installer sees it."""
        return f"/tmp/{path.relative_to(self.tmp)}" if self.sandboxed else str(path)  # noqa: S108

    def run(self, arguments: list[str], *, network: bool = False) -> None:
        uv = _uv()
        argv = [uv, *arguments]
        env = installer_environment()
        env.update(
            {
                "UV_CACHE_DIR": str(self.cache_dir),
                "UV_LINK_MODE": "copy",
                "UV_PYTHON_DOWNLOADS": "never",
            }
        )
        if self.sandboxed:
            for name in list(env):
                if name.lower().endswith("_proxy"):
                    del env[name]  # the sandbox's own proxy (the egress relay) stands in
            env.update({"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp"})  # noqa: S108
            confined = confine(
                argv,
                package_dir=None,
                tmp_dir=self.tmp,
                read_only_paths=[uv, sys.base_prefix],
                writable_paths=[self.staging, self.cache_dir],
                egress_socket=egress_socket() if network else None,
                env=env,
                chdir="/tmp",  # noqa: S108 - the sandbox's own
            )
        else:
            env.update({"HOME": str(self.tmp), "TMPDIR": str(self.tmp)})
            confined = run_unsandboxed(
                argv, visible_paths=[uv, sys.base_prefix, self.staging, self.cache_dir, self.tmp]
            )
        _run(
            confined.argv,
            self.log,
            env=env,
            preexec=confined.preexec,
            command=f"{Path(uv).name} {arguments[0]}",
        )

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _write_marker(path: Path, text: str) -> None:
    """Write the file that says an environment is complete. The installer's build code could
    have left anything at that name, a link to a host file included: the platform (root,
    perhaps) must replace it, never write through it."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(path, flags, 0o444), "w") as marker:
        marker.write(text)


def _make_read_only(path: Path) -> None:
    """The environment becomes the platform's, writable by nobody else (models bind it
    read-only on top of that)."""
    uid, gid = os.geteuid(), os.getegid()
    for folder, dirs, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, entry) for entry in dirs + files)]:
            os.lchown(name, uid, gid)
            if not os.path.islink(name):
                os.chmod(name, os.lstat(name).st_mode & 0o755 | 0o444)


# What the installer may see of the platform's environment: where to find indexes, caches,
# certificates and proxies. Everything else (SECRET_KEY, DATABASE_URL, broker and cloud
# credentials) stays out: installing a source distribution runs its build code.
_INSTALLER_ENV_PREFIXES = ("UV_", "PIP_", "SSL_CERT_", "XDG_", "LC_")
_INSTALLER_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "TMPDIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
    }
)


def installer_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name in _INSTALLER_ENV_NAMES or name.startswith(_INSTALLER_ENV_PREFIXES)
    }
    env["UV_NO_PROGRESS"] = "1"
    return env


def _run(
    argv: list[str], log: Log, *, env: dict | None = None, preexec=None, command: str = ""
) -> None:
    env = installer_environment() if env is None else env
    process = subprocess.Popen(  # noqa: S603 - our own uv with fixed arguments
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        preexec_fn=preexec,
    )
    assert process.stdout is not None
    for line in process.stdout:
        log("  " + line.rstrip())
    code = process.wait()
    if code != 0:
        command = command or f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''}".strip()
        raise BuildEnvironmentError(f"{command} failed with exit code {code}")
