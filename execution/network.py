"""The one way sandboxed code reaches a network: this process's egress proxy, started on
first use, whose Unix socket the sandbox binds (see sandbox.confine). It lets through the
public internet only, by the platform's outbound policy (marketplace.core.outbound)."""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from pathlib import Path

from .egress import EgressProxy

_lock = threading.Lock()
# The proxy of this process, and the process it belongs to (a forked worker starts its own:
# the parent's accept thread did not survive the fork).
_proxy: tuple[int, EgressProxy] | None = None


def egress_socket() -> Path:
    """The socket of this process's egress proxy, started if it is not running."""
    global _proxy
    with _lock:
        if _proxy is None or _proxy[0] != os.getpid():
            # A folder of its own, closed to other users: only the sandboxes it is bound into
            # reach the socket.
            folder = Path(tempfile.mkdtemp(prefix="marketplace-egress-"))
            proxy = EgressProxy(folder / "egress.sock")
            proxy.start()
            atexit.register(_stop, proxy, folder)
            _proxy = (os.getpid(), proxy)
        return _proxy[1].socket_path


def _stop(proxy: EgressProxy, folder: Path) -> None:
    proxy.stop()
    folder.rmdir()
