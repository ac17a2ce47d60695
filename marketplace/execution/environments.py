"""Isolated environments for model versions.

A Python environment is a virtual environment keyed by the hash of its requirements (and
the interpreter), so builds with the same requirements share one and a second build of an
unchanged model installs nothing. Environments are built next to their final place and
renamed into it only when complete; a crashed build never leaves a half-made environment
that a later build would trust.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

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


def python_environment_key(requirements: str) -> str:
    interpreter = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
    digest = hashlib.sha256(f"{interpreter}\n{normalise_requirements(requirements)}".encode())
    return f"py-{digest.hexdigest()[:24]}"


def _uv() -> str:
    candidate = Path(sys.executable).parent / "uv"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("uv")
    if found:
        return found
    raise BuildEnvironmentError("uv is not installed next to the platform's Python")


def ensure_python_environment(requirements: str, *, log: Log) -> PythonEnvironment:
    requirements = normalise_requirements(requirements)
    key = python_environment_key(requirements)
    root = environments_root()
    final = root / key
    if (final / ".complete").exists():
        log(f"Reusing environment {key}: nothing to install.")
        return PythonEnvironment(key, final, reused=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".complete").exists():
            log(f"Reusing environment {key} (built meanwhile by another build).")
            return PythonEnvironment(key, final, reused=True)
        if final.exists():
            shutil.rmtree(final)
        staging = root / f"{key}.building-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.monotonic()
        log(f"Creating environment {key}")
        try:
            _run([_uv(), "venv", "--quiet", "--python", sys.executable, str(staging)], log)
            if requirements:
                req_file = staging / "requirements.txt"
                req_file.write_text(requirements + "\n")
                log("Installing requirements:\n  " + requirements.replace("\n", "\n  "))
                _run(
                    [
                        _uv(),
                        "pip",
                        "install",
                        "--python",
                        str(staging / "bin" / "python"),
                        "-r",
                        str(req_file),
                    ],
                    log,
                )
            (staging / ".complete").write_text(requirements)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log(f"Environment {key} ready in {time.monotonic() - started:.1f}s")
        return PythonEnvironment(key, final, reused=False)


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


def _run(argv: list[str], log: Log) -> None:
    env = installer_environment()
    process = subprocess.Popen(  # noqa: S603 - our own uv with fixed arguments
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        log("  " + line.rstrip())
    code = process.wait()
    if code != 0:
        raise BuildEnvironmentError(f"{Path(argv[0]).name} {argv[1]} failed with exit code {code}")
