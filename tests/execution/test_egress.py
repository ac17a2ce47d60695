"""The egress proxy and the relay that sandboxed code reaches it through, without bubblewrap:
an EgressProxy on a Unix socket in this process, egress_relay.py as a real subprocess on a
loopback port, and urllib configured with the proxy variables as a sandboxed program is.

Loopback servers stand in for the host's internal services: the proxy refuses them (403, one
line of reason, nothing reaches them) unless OUTBOUND_ALLOWED_NETWORKS lets their port
through; CONNECT to private and metadata addresses is refused without connecting."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from execution import egress
from execution.egress import EgressProxy

RELAY = Path(egress.__file__).parent / "shims" / "egress_relay.py"


class Service:
    """A real HTTP server on loopback that records the requests reaching it."""

    def __init__(self):
        self.requests: list[dict] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                service.requests.append({"path": self.path, "headers": dict(self.headers)})
                body = b"internal answer"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                service.requests.append({"path": self.path, "body": body})
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.upper())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def service():
    running = Service()
    yield running
    running.close()


@pytest.fixture
def socket_dir():
    # A Unix socket's path must stay under ~100 bytes: pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="egress-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def proxy(socket_dir):
    with EgressProxy(socket_dir / "egress.sock", connect_timeout=3) as running:
        yield running


@pytest.fixture
def relay(proxy):
    """The relay as the sandbox runs it: its own process, on a loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(RELAY), "--listen", str(port), "--socket", str(proxy.socket_path)]
    )
    try:
        wait_listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def connections(monkeypatch):
    """Every TCP connection the proxy opens."""
    opened = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        opened.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return opened


def dial(relay: str) -> socket.socket:
    """A connection to the relay that does not go through socket.create_connection, so that
    `connections` sees only the proxy's."""
    sock = socket.socket()
    sock.settimeout(10)
    sock.connect(("127.0.0.1", int(relay.rsplit(":", 1)[1])))
    return sock


def through(relay: str):
    """urllib as a sandboxed program has it: everything through the relay."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({"http": relay, "https": relay}))


def connect_through(relay: str, target: str) -> bytes:
    """Send CONNECT for `target` through the relay; the proxy's whole answer."""
    with dial(relay) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


def test_the_socket_is_open_to_any_user_and_removed_on_stop(socket_dir):
    path = socket_dir / "egress.sock"
    with EgressProxy(path):
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
    assert not path.exists()


def test_a_loopback_service_is_refused(relay, service, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(urllib.error.HTTPError) as refused:
        through(relay).open(f"{service.url}/admin", timeout=10)
    assert refused.value.code == 403
    reason = refused.value.read().decode()
    assert reason.count("\n") == 1 and "does not send to" in reason
    assert service.requests == []


def test_an_allowed_loopback_service_is_reached(relay, service, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"127.0.0.1:{service.port}"]
    with through(relay).open(f"{service.url}/status?x=1", timeout=10) as answer:
        assert answer.status == 200 and answer.read() == b"internal answer"
    (request,) = service.requests
    assert request["path"] == "/status?x=1"  # origin form, as a server wants it
    assert request["headers"]["Host"] == f"127.0.0.1:{service.port}"
    assert "Proxy-Connection" not in request["headers"]
    with through(relay).open(
        urllib.request.Request(f"{service.url}/echo", data=b"body", method="POST"), timeout=10
    ) as answer:
        assert answer.read() == b"BODY"


def test_another_port_of_an_allowed_host_stays_refused(relay, service, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"127.0.0.1:{service.port + 1}"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        through(relay).open(service.url, timeout=10)
    assert refused.value.code == 403 and service.requests == []


def test_connect_to_loopback_is_refused(relay, service, settings, connections):
    for target in (f"127.0.0.1:{service.port}", f"localhost:{service.port}", "[::1]:443"):
        answer = connect_through(relay, target)
        assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n"), answer
        assert b"does not send to" in answer
    assert service.requests == [] and connections == []


@pytest.mark.parametrize(
    "target", ["10.0.0.1:443", "169.254.169.254:80", "[fd00:ec2::254]:80", "100.100.100.200:80"]
)
def test_connect_to_private_and_metadata_addresses_is_refused_without_connecting(
    relay, target, connections, caplog
):
    started = time.monotonic()
    answer = connect_through(relay, target)
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n"), answer
    assert time.monotonic() - started < 5
    assert connections == []
    assert any("egress proxy refused CONNECT" in r.getMessage() for r in caplog.records)


def test_an_allowed_tunnel_carries_bytes_both_ways(relay, service, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"127.0.0.1:{service.port}"]
    with dial(relay) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{service.port} HTTP/1.1\r\n\r\n".encode())
        assert sock.recv(4096) == b"HTTP/1.1 200 Connection established\r\n\r\n"
        sock.sendall(b"GET /tunnelled HTTP/1.0\r\nHost: inside\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"internal answer")
    assert service.requests[0]["path"] == "/tunnelled"


def test_requests_the_proxy_does_not_take_are_400s(relay):
    for head in (
        b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET https://pypi.org/ HTTP/1.1\r\n\r\n",
        b"CONNECT pypi.org HTTP/1.1\r\n\r\n",
        b"NONSENSE\r\n\r\n",
    ):
        with dial(relay) as sock:
            sock.sendall(head)
            assert sock.recv(4096).startswith(b"HTTP/1.1 400 "), head


def test_request_heads_and_connections_are_bounded(socket_dir, settings, service):
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"127.0.0.1:{service.port}"]
    path = str(socket_dir / "small.sock")
    with EgressProxy(path, max_connections=1, max_head_bytes=1024, head_timeout=1):
        with socket.socket(socket.AF_UNIX) as big:
            big.connect(path)
            big.sendall(b"GET http://x/ HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 4096 + b"\r\n")
            assert big.recv(4096).startswith(b"HTTP/1.1 431 ")
        time.sleep(0.2)  # the connection's slot is given back
        with socket.socket(socket.AF_UNIX) as held, socket.socket(socket.AF_UNIX) as second:
            held.connect(path)
            held.sendall(f"CONNECT 127.0.0.1:{service.port} HTTP/1.1\r\n\r\n".encode())
            assert held.recv(4096).startswith(b"HTTP/1.1 200 ")
            second.connect(path)
            assert second.recv(4096).startswith(b"HTTP/1.1 503 ")
        with socket.socket(socket.AF_UNIX) as silent:
            time.sleep(0.2)
            silent.connect(path)
            silent.settimeout(5)
            assert silent.recv(4096).startswith(b"HTTP/1.1 408 ")


def test_the_relay_runs_a_program_with_the_proxy_variables_and_dies_with_it(
    proxy, service, settings
):
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"127.0.0.1:{service.port}"]
    port = free_port()
    program = (
        "import os, urllib.request\n"
        "print(os.environ['HTTP_PROXY'], os.environ['https_proxy'], repr(os.environ['NO_PROXY']))\n"
        f"print(urllib.request.urlopen('{service.url}/from-the-program', timeout=10).read())\n"
        f"urllib.request.urlopen('http://127.0.0.1:{service.port + 1}/', timeout=10)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    finished = subprocess.run(
        [
            sys.executable,
            str(RELAY),
            "--listen",
            str(port),
            "--socket",
            str(proxy.socket_path),
            "--",
            sys.executable,
            "-c",
            program,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    relay_url = f"http://127.0.0.1:{port}"
    assert finished.stdout.splitlines() == [
        f"{relay_url} {relay_url} ''",
        "b'internal answer'",
    ], finished.stderr
    assert "HTTP Error 403: Forbidden" in finished.stderr  # the other port: refused
    assert [r["path"] for r in service.requests] == ["/from-the-program"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            break  # the relay went with its program
        time.sleep(0.1)
    else:
        raise AssertionError("the relay outlived its program")
