"""The egress proxy: the one way out of the sandbox to the internet, for a model whose manifest
says `network = true` and for a build's installer.

A sandbox has its own network namespace with nothing but loopback. Inside it,
shims/egress_relay.py listens on 127.0.0.1 and pipes every connection to this proxy's Unix
socket, bound into the sandbox; the sandboxed program finds it through HTTP_PROXY and
HTTPS_PROXY. The proxy, in the platform's process, speaks two forms of HTTP proxying:

- `CONNECT host:port` opens a tunnel (https, where TLS runs end to end through it);
- an absolute-URI request (`GET http://host/path HTTP/1.1`) is sent on as an origin-form
  request with `Connection: close`, and the answer piped back.

Both apply marketplace.core.outbound's policy: the name is resolved once, a loopback, private,
link-local or metadata address is refused with a 403 and one line of reason (before anything
connects), and the connection goes to the address that was checked. One request or tunnel per
connection; a bounded number at once; bounded request heads; timeouts for the head, the
connection and an idle tunnel.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
import urllib.parse
from http import HTTPStatus
from pathlib import Path

from marketplace.core.outbound import (
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    OutboundTarget,
    OutboundTimeout,
    connect_pinned,
)

logger = logging.getLogger(__name__)

# Headers meant for the proxy or for one connection, not for the upstream (RFC 9110 7.6.1).
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "host",  # set again from the request's URL
    }
)


class ProxyRefusal(Exception):
    """An answer the proxy gives instead of forwarding: a status and one line of reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class EgressProxy:
    """Usage: `with EgressProxy(path): ...`, or start() and stop().

    `socket_path` must be in a directory the platform controls (its parent is not created
    here); the socket is made mode 0666 so that the sandbox's user, whoever it maps to, can
    connect. `policy` defaults to the settings' at each request, so OUTBOUND_ALLOWED_NETWORKS
    applies as it is now."""

    def __init__(
        self,
        socket_path: str | os.PathLike,
        *,
        policy: OutboundPolicy | None = None,
        max_connections: int = 64,
        max_head_bytes: int = 16 * 1024,
        head_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
    ):
        self.socket_path = Path(socket_path)
        self.policy = policy
        self.max_head_bytes = max_head_bytes
        self.head_timeout = head_timeout
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # a socket left by a process that died
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o666)  # noqa: S103 - the sandbox's user may be anyone
        listener.listen(128)
        listener.settimeout(0.5)  # how often the accept loop looks at _stopping
        self._listener = listener
        self._stopping.clear()
        self._accepting = threading.Thread(
            target=self._accept_loop, name="egress-proxy", daemon=True
        )
        self._accepting.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def __enter__(self) -> EgressProxy:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                logger.exception("egress proxy: accept failed")
                time.sleep(0.1)
                continue
            if not self._slots.acquire(blocking=False):
                logger.warning("egress proxy: refused a connection, all slots are in use")
                _answer(client, 503, "too many connections through the egress proxy at once")
                client.close()
                continue
            threading.Thread(
                target=self._serve, args=(client,), name="egress-connection", daemon=True
            ).start()

    # -- one connection -----------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        self._track(client)
        try:
            head, rest = self._read_head(client)
            method, target, headers = _parse_head(head)
            if method == "CONNECT":
                upstream = self._open_tunnel(client, target, rest)
            else:
                upstream = self._forward_request(client, method, target, headers, rest)
            self._pipe(client, upstream)
        except ProxyRefusal as refusal:
            _answer(client, refusal.status, refusal.reason)
        except OSError:
            pass  # the sandboxed client or the upstream went away
        except Exception:
            logger.exception("egress proxy: a connection failed")
            _answer(client, 500, "the egress proxy failed")
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._untrack(sock)
                    sock.close()
            self._slots.release()

    def _track(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)

    def _read_head(self, client: socket.socket) -> tuple[bytes, bytes]:
        """The request head (up to its blank line) and whatever came after it."""
        deadline = time.monotonic() + self.head_timeout
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            if len(buffer) > self.max_head_bytes:
                raise ProxyRefusal(431, "the request head is too large")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProxyRefusal(408, "the request head did not arrive in time")
            client.settimeout(remaining)
            try:
                chunk = client.recv(4096)
            except TimeoutError:
                raise ProxyRefusal(408, "the request head did not arrive in time") from None
            if not chunk:
                raise OSError("the client closed the connection")
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        if len(head) > self.max_head_bytes:
            raise ProxyRefusal(431, "the request head is too large")
        return head, rest

    def _connect(self, method: str, hostname: str, port: int) -> socket.socket:
        policy = self.policy or OutboundPolicy.from_settings()
        try:
            addresses = policy.resolve(hostname, port)
        except OutboundRefused as refusal:
            logger.warning("egress proxy refused %s %s:%s: %s", method, hostname, port, refusal)
            raise ProxyRefusal(403, str(refusal)) from None
        except OutboundError as error:
            raise ProxyRefusal(502, str(error)) from None
        try:
            upstream = connect_pinned(
                addresses, port, timeout=self.connect_timeout, hostname=hostname
            )
        except OutboundTimeout as error:
            raise ProxyRefusal(504, str(error)) from None
        except OutboundError as error:
            raise ProxyRefusal(502, str(error)) from None
        self._track(upstream)
        return upstream

    def _open_tunnel(self, client: socket.socket, target: str, rest: bytes) -> socket.socket:
        try:
            parts = urllib.parse.urlsplit(f"//{target}")
            port = parts.port
        except ValueError:
            raise ProxyRefusal(400, "CONNECT wants host:port") from None
        if not parts.hostname or not port or parts.path or parts.username is not None:
            raise ProxyRefusal(400, "CONNECT wants host:port")
        hostname = parts.hostname
        upstream = self._connect("CONNECT", hostname, port)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        return upstream

    def _forward_request(
        self, client: socket.socket, method: str, target: str, headers: list, rest: bytes
    ) -> socket.socket:
        if not target.lower().startswith("http://"):
            raise ProxyRefusal(
                400, "send http:// URLs in absolute form, and https:// through CONNECT"
            )
        try:
            url = OutboundTarget.from_url(target)
        except OutboundRefused as refusal:
            raise ProxyRefusal(400, str(refusal)) from None
        named = {value.strip().lower() for name, value in headers if name.lower() == "connection"}
        kept = [
            (name, value)
            for name, value in headers
            if name.lower() not in HOP_BY_HOP_HEADERS and name.lower() not in named
        ]
        host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
        authority = host if url.port == 80 else f"{host}:{url.port}"
        head = "".join(
            [
                f"{method} {url.request_target} HTTP/1.1\r\n",
                f"Host: {authority}\r\n",
                *(f"{name}: {value}\r\n" for name, value in kept),
                "Connection: close\r\n\r\n",
            ]
        )
        upstream = self._connect(method, url.hostname, url.port)
        upstream.sendall(head.encode("latin-1") + rest)
        return upstream

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        """Bytes both ways until both sides are done or nothing moves for idle_timeout.
        One side's end is passed on as a half close, so a request body can end while its
        answer still comes."""
        peers = {client: upstream, upstream: client}
        for sock in peers:
            sock.settimeout(self.idle_timeout)
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            reading = len(peers)
            while reading:
                ready = selector.select(self.idle_timeout)
                if not ready or self._stopping.is_set():
                    return
                for key, _ in ready:
                    data = key.fileobj.recv(65536)
                    if data:
                        peers[key.fileobj].sendall(data)
                        continue
                    selector.unregister(key.fileobj)
                    reading -= 1
                    with contextlib.suppress(OSError):
                        peers[key.fileobj].shutdown(socket.SHUT_WR)


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
        raise ProxyRefusal(400, "not an HTTP/1.x proxy request")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or any(c in name for c in " \t"):
            raise ProxyRefusal(400, "a request header is malformed")
        if any(c in value for c in "\r\n\0"):
            raise ProxyRefusal(400, "a request header is malformed")
        headers.append((name, value.strip()))
    return parts[0].upper(), parts[1], headers


def _answer(client: socket.socket, status: int, reason: str) -> None:
    body = f"{reason}\n".encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        client.settimeout(5)
        client.sendall(head.encode() + body)
