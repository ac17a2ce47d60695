"""The sandbox's one door to the platform's own API, so a model can do what Algorithmia let
an algorithm do: `Algorithmia.client()` with no arguments reads data as its caller and calls
other models, billed to that caller.

Every model process in the pool gets a door of its own: a Unix socket, in a private folder,
bound into the sandbox at SANDBOX_API_SOCKET. Inside, shims/api_relay.py listens on
127.0.0.1:SANDBOX_API_PORT and pipes each connection to it, and the model's environment says
`ALGORITHMIA_API=http://127.0.0.1:PORT` and `ALGORITHMIA_API_KEY=<this process's token>`.
A model loaded once serves many calls (and often builds its client at import), so the key it
holds is the process's, not a call's: the door swaps it, request by request, for the
credential of the call running on the process right now (`call_open`), which the gateway
issued for that one call. The door answers by itself, forwarding nothing, when:

- no call runs on the process (between calls, a thread the model left running): 401;
- the key is not this process's token: 401;
- the request is not an origin-form request for one of the API paths a model may use
  (`ALLOWED_PREFIXES`): a proxy request (`GET http://...`, `CONNECT`), `/v1/keys`, `/admin`:
  403;
- too many requests of this process are open at once: 429.

What it forwards goes to SANDBOX_API_URL (by default PUBLIC_URL; the Host header is always
PUBLIC_URL's) with the call's credential,
and the platform checks that credential again (gateway/call_credentials.py): it dies when
the call ends and at the call's deadline, whatever the door does."""

from __future__ import annotations

import contextlib
import hmac
import http.client
import json
import logging
import os
import secrets
import shutil
import socketserver
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

# What the relay in the sandbox asks once it listens (shims/api_relay.py: READY_PATH).
RELAY_READY_PATH = "/.relay-ready"
# The paths of the v1 API a model may use with its caller's credential.
ALLOWED_PREFIXES = ("/v1/algo/", "/v1/data/", "/v1/connector/")
# Headers that concern one connection, or that the door sets itself.
_DROPPED_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-project",  # a nested call is billed under its parent's project, not one it names
    }
)
_CHUNK = 64 * 1024
# How long a forwarded request may take beyond its call's deadline (the platform refuses
# the credential from then on; this only bounds a stuck upstream).
_DEADLINE_GRACE_SECONDS = 5.0


def api_url() -> str:
    """Where the door forwards to: the platform's API as the runner's host reaches it."""
    return (getattr(settings, "SANDBOX_API_URL", "") or settings.PUBLIC_URL).rstrip("/")


def _key_in(header: str) -> str:
    parts = (header or "").split()
    if len(parts) == 2 and parts[0].lower() in ("simple", "bearer"):
        return parts[1]
    return parts[0] if len(parts) == 1 else ""


def path_allowed(target: str) -> bool:
    """Whether a request target is one of the API paths a model may use, in origin form,
    with nothing that a server could read as another path."""
    if not target.startswith(ALLOWED_PREFIXES):
        return False
    path = target.split("?", 1)[0]
    lowered = urllib.parse.unquote(path).lower()
    return not (
        "//" in path or "\\" in lowered or "/../" in lowered + "/" or "/./" in lowered + "/"
    )


class PlatformApiDoor:
    """One model process's door. `start()` makes the socket; `call_open(credential,
    deadline)` and `call_closed()` bracket each call; `stop()` removes it all."""

    def __init__(self, *, max_requests: int = 8):
        self.token = "mpproc_" + secrets.token_urlsafe(24)
        self._folder = Path(tempfile.mkdtemp(prefix="marketplace-api-"))
        self.socket_path = self._folder / "api.sock"
        self._slots = threading.BoundedSemaphore(max_requests)
        self._lock = threading.Lock()
        self._credential: str | None = None
        self._deadline = 0.0
        self._server: _Server | None = None
        # Set when the relay inside the sandbox listens (shims/api_relay.py tells the door).
        self.relay_ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        handler = type("Handler", (_DoorHandler,), {"door": self})
        self._server = _Server(str(self.socket_path), handler)
        os.chmod(self.socket_path, 0o666)  # noqa: S103 - in a 0700 folder; the sandbox user may be anyone
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="platform-api-door",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.call_closed()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self._folder, ignore_errors=True)

    def call_open(self, credential: str | None, deadline: float) -> None:
        """From now until `call_closed` (or the monotonic `deadline`), requests act with
        `credential`; None leaves the door shut (a call made without one)."""
        with self._lock:
            self._credential, self._deadline = credential, deadline

    def call_closed(self) -> None:
        with self._lock:
            self._credential, self._deadline = None, 0.0

    def current_call(self) -> tuple[str | None, float]:
        with self._lock:
            if self._credential is None or time.monotonic() >= self._deadline:
                return None, 0.0
            return self._credential, self._deadline


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """One thread per connection, and a bounded number of connections: a model that opens
    hundreds (its relay can) gets the rest closed unanswered, not a runner thread each."""

    daemon_threads = True
    block_on_close = False
    max_connections = 32

    def server_activate(self) -> None:
        super().server_activate()
        self._connections = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request, client_address) -> None:
        if not self._connections.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()


class _DoorHandler(BaseHTTPRequestHandler):
    door: PlatformApiDoor
    protocol_version = "HTTP/1.1"
    timeout = 30  # for reading the request head and body from the model

    def address_string(self) -> str:
        return "sandbox"

    def log_message(self, format, *args):
        logger.debug("platform api door: " + format, *args)

    def _refuse(self, status: int, message: str) -> None:
        body = json.dumps({"error": {"message": message, "error_type": "SandboxApiError"}})
        payload = body.encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(payload)

    def _handle(self) -> None:
        self.close_connection = True  # one request per connection
        if self.path == RELAY_READY_PATH and self.command == "GET":
            self.door.relay_ready.set()  # a model that says it itself only fools itself
            self.send_response(204)
            self.send_header("Connection", "close")
            self.end_headers()
            return
        if not path_allowed(self.path):
            self._refuse(
                403,
                "the sandbox reaches only the platform's API ("
                + ", ".join(ALLOWED_PREFIXES)
                + "), nothing else",
            )
            return
        credential, deadline = self.door.current_call()
        if credential is None:
            self._refuse(401, "no call is running on this model process: its credential is dead")
            return
        if not hmac.compare_digest(
            _key_in(self.headers.get("Authorization", "")).encode(), self.door.token.encode()
        ):
            self._refuse(401, "this is not the credential the platform gave this model")
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._refuse(411, "send a Content-Length with the body")
            return
        if not self.door._slots.acquire(blocking=False):
            self._refuse(429, "too many requests to the platform's API at once")
            return
        try:
            self._forward(credential, deadline)
        finally:
            self.door._slots.release()

    def _forward(self, credential: str, deadline: float) -> None:
        base = urllib.parse.urlsplit(api_url())
        timeout = max(1.0, deadline - time.monotonic() + _DEADLINE_GRACE_SECONDS)
        connection_class = (
            http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
        )
        upstream = connection_class(base.netloc, timeout=timeout)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._refuse(400, "Content-Length is not a number")
            return
        try:
            upstream.putrequest(
                self.command, base.path + self.path, skip_host=True, skip_accept_encoding=True
            )
            # The public name: SANDBOX_API_URL may be an internal one (http://web:8000)
            # that ALLOWED_HOSTS does not list.
            upstream.putheader("Host", urllib.parse.urlsplit(settings.PUBLIC_URL).netloc)
            upstream.putheader("Authorization", f"Simple {credential}")
            for name, value in self.headers.items():
                if name.lower() not in _DROPPED_HEADERS:
                    upstream.putheader(name, value)
            upstream.putheader("Connection", "close")
            upstream.endheaders()
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(_CHUNK, remaining))
                if not chunk:
                    return  # the model closed before its body ended
                upstream.send(chunk)
                remaining -= len(chunk)
            answer = upstream.getresponse()
        except OSError as error:
            self._refuse(502, f"the platform's API did not answer: {error}")
            upstream.close()
            return
        try:
            self.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                    self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            while chunk := answer.read(_CHUNK):
                self.wfile.write(chunk)
        except OSError:
            pass  # the model hung up
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def do_CONNECT(self):
        self.close_connection = True
        self._refuse(403, "the sandbox reaches only the platform's API, nothing else")
