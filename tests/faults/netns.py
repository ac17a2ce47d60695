"""Separate "hosts" for tests: Linux network namespaces joined to this one by veth pairs
(as root, with `ip`), or, where namespaces are not available, plain processes on loopback.
A host reaches this machine's services only at `service_address`."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass
class Host:
    name: str
    # Where processes on this host reach the services of the test's own namespace.
    service_address: str
    namespace: str | None = None
    veth: str | None = None

    def command(self, argv: list[str]) -> list[str]:
        if self.namespace is None:
            return argv
        return ["ip", "netns", "exec", self.namespace, *argv]

    def remove(self) -> None:
        """Delete the namespace (its end of the veth pair goes with it, and so the pair)."""
        if self.namespace is not None:
            _ip("netns", "delete", self.namespace, check=False)
        if self.veth is not None:
            _ip("link", "delete", self.veth, check=False)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


@functools.cache
def namespaces_available() -> bool:
    """Root with `ip`, and the kernel lets us make a namespace (a container may not)."""
    if os.environ.get("TEST_HOSTS") == "loopback":  # to run the fallback on purpose
        return False
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"mp{os.getpid()}probe"
    made = _ip("netns", "add", probe, check=False).returncode == 0
    _ip("netns", "delete", probe, check=False)
    return made


@contextlib.contextmanager
def hosts(count: int):
    """`count` hosts, each its own network namespace when this test may make them (names
    unique to this process), else loopback processes. Everything is removed on exit."""
    made: list[Host] = []
    if not namespaces_available():
        yield [Host(f"host{i}", "127.0.0.1") for i in range(count)]
        return
    pid = os.getpid()
    try:
        for i in range(count):
            # /30 subnets in 10.213.0.0/16 picked from the pid, so two runs do not collide.
            subnet = (pid * count + i) % 16384
            prefix, last = f"10.213.{subnet // 64}", (subnet % 64) * 4
            outer, inner = f"{prefix}.{last + 1}", f"{prefix}.{last + 2}"
            host = Host(f"host{i}", outer, namespace=f"mp{pid}h{i}", veth=f"mp{pid}v{i}"[:15])
            peer = f"mp{pid}p{i}"[:15]
            made.append(host)
            _ip("netns", "add", host.namespace)
            _ip("link", "add", host.veth, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", host.namespace)
            _ip("addr", "add", f"{outer}/30", "dev", host.veth)
            _ip("link", "set", host.veth, "up")
            for args in (
                ("addr", "add", f"{inner}/30", "dev", peer),
                ("link", "set", peer, "up"),
                ("link", "set", "lo", "up"),
            ):
                _ip("-n", host.namespace, *args)
        yield made
    finally:
        for host in made:
            host.remove()
