"""The one way sandboxed code reaches a network: this process's egress proxy, started on
first use, whose Unix socket the sandbox binds (see sandbox.confine). It lets through the
public internet only, by the platform's outbound policy (marketplace.core.outbound)."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_proxy = None


def egress_socket() -> Path:
    """The socket of this process's egress proxy, started if it is not running."""
    global _proxy
    from .egress import EgressProxy

    with _lock:
        if _proxy is None or _proxy.pid != os.getpid():
            folder = Path(tempfile.mkdtemp(prefix="marketplace-egress-"))
            proxy = EgressProxy(folder / "egress.sock")
            proxy.start()
            proxy.pid = os.getpid()
            _proxy = proxy
        return _proxy.socket_path
