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


def sandbox_status() -> SandboxStatus:
    if settings.SANDBOX == "off":
        return SandboxStatus(False, "rlimits", "sandbox turned off by SANDBOX=off")
    works, message = _probe_bubblewrap()
    if works:
        return SandboxStatus(True, "bubblewrap", message)
    return SandboxStatus(False, "rlimits", message)
