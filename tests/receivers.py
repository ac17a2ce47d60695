"""A real HTTP endpoint on loopback that records what is POSTed to it (webhooks)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@contextmanager
def webhook_receiver():
    """Yields (url, received): `received` fills with (headers, body) of every POST."""
    received: list[tuple[dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()


def wait_for(received: list, count: int, seconds: float = 30) -> list:
    deadline = time.monotonic() + seconds
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return received


def allow_outbound(settings, url: str) -> None:
    """Let the platform reach this test's loopback server, as an operator would for an
    in-cluster service: its host:port joins OUTBOUND_ALLOWED_NETWORKS (loopback is refused
    otherwise)."""
    parts = urlsplit(url)
    settings.OUTBOUND_ALLOWED_NETWORKS = [
        *settings.OUTBOUND_ALLOWED_NETWORKS,
        f"{parts.hostname}:{parts.port}",
    ]
