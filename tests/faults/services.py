"""Services a test starts for itself alone: a private Redis on a free port (no other run's
worker takes its tasks) and a TCP relay that makes a Unix-socket-only PostgreSQL (the
embedded one) reachable from another network namespace."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def redis_server_available() -> bool:
    return shutil.which("redis-server") is not None


@contextlib.contextmanager
def private_redis(bind: tuple[str, ...] = ("127.0.0.1",)) -> Iterator[int]:
    """A redis-server of this test's own on a free port of every address in `bind` (the
    first one is where the port is chosen); yields the port. Nothing is saved to disk."""
    directory = Path(tempfile.mkdtemp(prefix="test-redis-"))
    for _attempt in range(5):
        port = free_port(bind[0])
        process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(port),
                "--bind",
                *bind,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                "--protected-mode",
                "no",
            ],
            stdout=(directory / "redis.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        if _wait_for_port(bind[0], port, process):
            break
        process.kill()
        process.wait()
    else:
        raise AssertionError((directory / "redis.log").read_text(errors="replace"))
    try:
        yield port
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for_port(address: str, port: int, process: subprocess.Popen, timeout=10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((address, port)) == 0:
                return True
        time.sleep(0.05)
    return False


class UnixRelay:
    """Accepts TCP connections on `addresses` (one free port for all) and pipes each to the
    Unix socket at `target`, in threads of this process. When either side closes, so does
    the other: a killed client ends its PostgreSQL session at once, as it would on a direct
    connection."""

    def __init__(self, addresses: list[str], target: Path):
        self.target = str(target)
        self.port = free_port(addresses[0])
        self._listeners = []
        for address in addresses:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((address, self.port))
            listener.listen(64)
            self._listeners.append(listener)
        self._stopped = threading.Event()
        self._threads = [
            threading.Thread(target=self._accept, args=(listener,), daemon=True)
            for listener in self._listeners
        ]
        for thread in self._threads:
            thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.socket(socket.AF_UNIX)
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self._stopped.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
