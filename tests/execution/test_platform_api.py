"""A model process's door to the platform's API (execution/platform_api.py), on its own
Unix socket, forwarding to a real HTTP server on loopback that records what it got. The
sandboxed path (relay, bubblewrap, the live API) is tests/gateway/test_nested_calls.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from execution.platform_api import PlatformApiDoor


class _Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, dict(self.headers), body))
        payload = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture
def upstream(settings):
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SANDBOX_API_URL = f"http://127.0.0.1:{server.server_port}"
    settings.PUBLIC_URL = "https://models.example.org"
    yield _Recorder.seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def door():
    door = PlatformApiDoor()
    door.start()
    yield door
    door.stop()


def send(door: PlatformApiDoor, raw: bytes) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(str(door.socket_path))
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def request(door, path="/v1/data/.my/a.txt", key=None, method="GET", body=b"", extra=""):
    key = door.token if key is None else key
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:9180\r\nAuthorization: {key}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return send(door, head.encode() + body)


def test_forwards_with_the_calls_credential_only_while_the_call_runs(door, upstream):
    assert request(door)[0] == 401  # no call yet
    door.call_open("mpcall_the-calls-own", time.monotonic() + 60)
    status, body = request(
        door,
        "/v1/algo/ada/toolbox?timeout=5",
        method="POST",
        body=b'{"x": 1}',
        extra=(
            "X-Project: elsewhere\r\nX-Forwarded-For: 10.0.0.1\r\n"
            "Content-Type: application/json\r\n"
        ),
    )
    assert status == 200 and json.loads(body) == {"ok": True}
    method, path, headers, sent = upstream[-1]
    assert (method, path, sent) == ("POST", "/v1/algo/ada/toolbox?timeout=5", b'{"x": 1}')
    assert headers["Authorization"] == "Simple mpcall_the-calls-own"
    assert headers["Host"] == "models.example.org"
    assert "X-Project" not in headers and "X-Forwarded-For" not in headers
    door.call_closed()
    assert request(door)[0] == 401
    assert len(upstream) == 1


def test_a_call_past_its_deadline_is_shut(door, upstream):
    door.call_open("mpcall_x", time.monotonic() - 1)
    assert request(door)[0] == 401
    assert upstream == []


def test_only_this_processes_token_is_accepted(door, upstream):
    door.call_open("mpcall_x", time.monotonic() + 60)
    other = PlatformApiDoor()
    try:
        assert request(door, key=other.token)[0] == 401
        assert request(door, key="")[0] == 401
        assert request(door, key=f"Simple {door.token}")[0] == 200
    finally:
        other.stop()


@pytest.mark.parametrize(
    "target",
    [
        "/v1/keys",
        "/v1/models/ada/toolbox",
        "/admin/",
        "/v1/algo/../keys",
        "/v1/algo/%2e%2e/keys",
        "/v1/data//etc/passwd",
        "/v1/data/.my/a\\b",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8000/v1/algo/ada/toolbox",
    ],
)
def test_anything_but_the_model_api_is_refused(door, upstream, target):
    door.call_open("mpcall_x", time.monotonic() + 60)
    status, body = request(door, target)
    assert status == 403, body
    assert upstream == []


def test_connect_is_refused(door, upstream):
    door.call_open("mpcall_x", time.monotonic() + 60)
    assert send(door, b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")[0] == 403
    assert upstream == []


def test_a_flood_of_connections_is_cut_off(door):
    held = []
    try:
        for _ in range(door_limit() + 8):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(door.socket_path))
            held.append(sock)
        extra = held[-1]
        extra.settimeout(20)
        assert extra.recv(1) == b""  # closed unanswered, while the first ones wait
    finally:
        for sock in held:
            sock.close()


def door_limit() -> int:
    from execution.platform_api import _Server

    return _Server.max_connections
