"""The platform's data directory (settings.VAR_DIR, ./var by default) and the secrets it keeps.

var/ holds the demo credentials, uploaded packages, the database, sockets and generated
secrets, so no other user of the machine may read it. Run as an ordinary user, var/ and
everything in it are the user's alone (0700). Run as root, the embedded PostgreSQL runs as its
own system user (marketplace/embedded.py), which must traverse var/ and var/postgres/ to reach
its data and socket: those two are 0711 (others may pass through, never list), every other
child stays 0700.

Nothing here imports Django: settings.py and `python -m marketplace.embedded` both use it
before Django is set up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

# The embedded server's own directory (marketplace/embedded.py).
POSTGRES_CHILD = "postgres"


def running_as_root() -> bool:
    return os.geteuid() == 0


def ensure_var_dir(var_dir: Path) -> Path:
    """Create `var_dir` if needed and close it (and its direct children) to other users.
    Idempotent and cheap: called at every start."""
    var_dir = Path(var_dir)
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    traversable = 0o711 if running_as_root() else 0o700
    _set_mode(var_dir, traversable)
    # Environments and packages too: sandboxed code reaches its own through the sandbox's
    # binds (execution/sandbox.py), never through these folders' modes.
    for child in var_dir.iterdir():
        if child.name == POSTGRES_CHILD:
            _set_mode(child, traversable)
        elif child.is_dir():
            _set_mode(child, 0o700)
        else:
            _set_mode(child, 0o600)
    return var_dir


def _set_mode(path: Path, mode: int) -> None:
    """chmod what we own; leave alone what another user owns (the embedded server's files
    as root, a volume mounted by an orchestrator) and never follow a symbolic link. A
    read-only file system (a container's image, where the Dockerfile sets the modes) is
    left as it is."""
    with contextlib.suppress(FileNotFoundError):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
            return
        if stat.S_IMODE(info.st_mode) != mode:
            try:
                path.chmod(mode)
            except OSError as error:
                if error.errno != errno.EROFS:
                    raise


def read_or_create_secret(path: Path, *, nbytes: int = 48) -> str:
    """The secret kept in `path`, generated (URL-safe random text) the first time.

    The file is written whole to a temporary file of mode 0600 and linked into place
    (link() fails if the name exists), so a reader never sees a partial file and two
    processes starting at once agree on the first one's secret."""
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        return _read_secret(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = _private_temporary_file(path)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_secret(path)


def _private_temporary_file(path: Path) -> tuple[int, str]:
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        with contextlib.suppress(FileExistsError):
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, 0o600)  # whatever the umask
            return fd, str(temporary)


def _read_secret(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty; delete it to have a new secret generated")
    return value
