"""The host's runner service: owns the warm pool and answers calls over a Unix socket, so
every web and Celery worker process on the host shares one set of model processes.

    POST /call     {"build_id", "content_type", "data", "timeout", "request_id", "credential"}
    POST /cancel   {"request_id"}
    GET  /health

Whoever starts the service gives it the two things it needs from above (the `run_runner`
command passes the catalogue's): how to start the model of a build (build id -> LaunchSpec),
and the reservations wanted (build id -> processes kept warm), which the maintenance loop
applies every MAINTENANCE_SECONDS.

Answers are JSON: a call's outcome (result or model error) or a "failure" naming what went
wrong outside the model's own code (timeout, crash, start failure, busy, unknown build).

Only the platform may call it (a call runs any build, unbilled): the socket is 0600 in a
0700 directory, and every connection whose peer is not the platform's own user is closed
unanswered (SO_PEERCRED).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import select
import socket
import socketserver
import struct
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, connections

from marketplace.core.logging import logged_runner_call

from .cgroups import CgroupError, cgroup_support
from .pool import PoolBusy, PoolSettings, WarmPool
from .process import LaunchSpec, ModelCrashed, ModelProcessError, ModelStartError, ModelTimeout
from .sandbox import SandboxUnavailable

logger = logging.getLogger(__name__)

_MAX_SOCKET_PATH = 100
MAINTENANCE_SECONDS = 15


def socket_path() -> Path:
    configured = getattr(settings, "RUNNER_SOCKET", "")
    if configured:
        return Path(configured)
    preferred = Path(settings.VAR_DIR) / "run" / "runner.sock"
    if len(str(preferred)) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    # In a directory of its own, which serve() makes 0700.
    return Path(tempfile.gettempdir()) / f"marketplace-runner-{digest}" / "runner.sock"


# -- server --------------------------------------------------------------------------------------


class RunnerService:
    def __init__(
        self,
        pool: WarmPool,
        *,
        launch_spec_for_build: Callable[[str], LaunchSpec],
        reservations_wanted: Callable[[], dict[str, int]],
    ):
        """`launch_spec_for_build(build_id)` says how to start a build's model (LookupError:
        no such successful build); `reservations_wanted()` answers build id -> processes to
        keep warm."""
        self.pool = pool
        self.launch_spec_for_build = launch_spec_for_build
        self.reservations_wanted = reservations_wanted
        self._specs: dict[str, object] = {}
        self._lock = threading.Lock()
        # A call's build is looked up on this one long-lived thread, whose database
        # connection outlives each lookup: a request thread's own connection would be
        # opened for the lookup (about 10 ms of a cold start) and closed with the request.
        self._lookups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="build-lookup")

    def _factory(self, build_id: str, *, on_lookup_thread: bool = False):
        def factory():
            with self._lock:
                spec = self._specs.get(build_id)
            if spec is None:
                if on_lookup_thread:
                    spec = self._lookups.submit(self._look_up, build_id).result()
                else:
                    close_old_connections()
                    spec = self.launch_spec_for_build(build_id)
                with self._lock:
                    self._specs[build_id] = spec
            return spec

        return factory

    def _look_up(self, build_id: str) -> LaunchSpec:
        """On the lookup thread: its connection is kept while it works (one round trip
        checks it before each lookup), and replaced when it does not (a database that
        restarted)."""
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        return self.launch_spec_for_build(build_id)

    def close(self) -> None:
        """Close the lookup thread's database connection, then let the thread end."""
        self._lookups.submit(connections.close_all).result()
        self._lookups.shutdown()

    @logged_runner_call
    def call(self, body: dict) -> dict:
        build_id = str(body["build_id"])
        timeout = float(body.get("timeout", 300))
        try:
            outcome = self.pool.call(
                build_id,
                self._factory(build_id, on_lookup_thread=True),
                body.get("content_type", "json"),
                body.get("data"),
                timeout=timeout,
                request_id=body.get("request_id"),
                credential=body.get("credential") or None,
            )
        except LookupError as exc:
            return {"failure": {"kind": "unknown_build", "message": str(exc)}}
        except ModelTimeout as exc:
            return {"failure": {"kind": "timeout", "message": exc.message, "output": exc.output}}
        except ModelStartError as exc:
            return {"failure": {"kind": "start", "message": exc.message, "output": exc.output}}
        except ModelCrashed as exc:
            return {"failure": {"kind": "crashed", "message": exc.message, "output": exc.output}}
        except ModelProcessError as exc:
            return {"failure": {"kind": "crashed", "message": exc.message, "output": exc.output}}
        except PoolBusy as exc:
            return {"failure": {"kind": "busy", "message": str(exc)}}
        except SandboxUnavailable as exc:
            return {"failure": {"kind": "sandbox", "message": str(exc)}}
        result = outcome.result
        return {
            "result": result.result,
            "content_type": result.content_type,
            "error": result.error,
            "stdout": result.stdout,
            "duration": result.duration,
            "cold_start": outcome.cold_start,
            "pid": outcome.pid,
        }

    def apply_reservations(self) -> None:
        """Keep warm what owners asked for (`reservations_wanted`) and release what they no
        longer want."""
        close_old_connections()
        wanted = self.reservations_wanted()
        for build_id in set(self.pool.reserved()) - set(wanted):
            self.pool.reserve(build_id, self._factory(build_id), 0)
        for build_id, count in wanted.items():
            try:
                self.pool.reserve(build_id, self._factory(build_id), count)
            except (LookupError, ModelProcessError):
                logger.exception("could not keep %s warm", build_id)

    def health(self) -> dict:
        return {
            "status": "ok",
            "pid": os.getpid(),
            "sandbox": self.pool.sandbox,
            **self.pool.stats(),
        }


class _Handler(BaseHTTPRequestHandler):
    service: RunnerService
    protocol_version = "HTTP/1.1"

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format, *args):
        logger.debug("runner: " + format, *args)

    def _reply(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        if self.path == "/health":
            self._reply(200, self.service.health())
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._reply(400, {"error": "bad json"})
            return
        routes = {
            "/call": self.service.call,
            "/cancel": lambda b: {"canceled": self.service.pool.cancel(str(b.get("request_id")))},
        }
        handler = routes.get(self.path)
        if handler is None:
            self._reply(404, {"error": "not found"})
            return
        try:
            self._reply(200, handler(body))
        except Exception as exc:
            logger.exception("runner request failed")
            self._reply(500, {"failure": {"kind": "internal", "message": str(exc)}})
        finally:
            # Each request runs in a thread of its own: its database connection (opened
            # to look a build up) must not outlive it.
            connections.close_all()


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 256

    def verify_request(self, request, client_address) -> bool:
        """Serve only processes of the platform's own user (root only when the platform is
        root); anyone else is closed unanswered, whatever the socket's mode lets through."""
        if not hasattr(socket, "SO_PEERCRED"):  # not Linux: the socket's 0600 mode alone
            return True
        credentials = request.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
        )
        pid, uid, _gid = struct.unpack("3i", credentials)
        if uid == os.geteuid():
            return True
        logger.warning("runner: refused a connection from uid %s (pid %s)", uid, pid)
        return False


def _private_socket_directory(path: Path) -> None:
    """Make the socket's directory 0700. A directory the deployment chose (RUNNER_SOCKET) or
    mounted (var/run as a volume shared with the worker's container, owned by root) keeps
    its mode: the socket's own mode and the peer check still hold there. A directory under
    /tmp that someone else made first is refused."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if getattr(settings, "RUNNER_SOCKET", ""):
        return
    info = directory.lstat()
    if info.st_uid == os.geteuid() and not directory.is_symlink():
        directory.chmod(0o700)
    elif directory.parent == Path(tempfile.gettempdir()):
        raise RuntimeError(f"{directory} belongs to another user; remove it")


def serve(
    path: Path,
    pool: WarmPool,
    *,
    launch_spec_for_build: Callable[[str], LaunchSpec],
    reservations_wanted: Callable[[], dict[str, int]],
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> None:
    _private_socket_directory(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    # What cgroups models get is probed once per process: now, not in the first call's
    # cold start (it also clears the cgroups a dead runner left behind).
    with contextlib.suppress(CgroupError):
        cgroup_support()
    service = RunnerService(
        pool,
        launch_spec_for_build=launch_spec_for_build,
        reservations_wanted=reservations_wanted,
    )
    handler = type("Handler", (_Handler,), {"service": service})
    # bind() creates the socket file with the umask's mode: 0600 from the first moment.
    # (The umask is the process's: set for this instant only, at start.)
    previous_umask = os.umask(0o177)
    try:
        server = _UnixServer(str(path), handler)
    finally:
        os.umask(previous_umask)

    def maintain():
        while True:
            for job in (service.apply_reservations, pool.evict_idle, pool.replenish_reservations):
                try:
                    job()
                except Exception:
                    logger.exception("runner maintenance failed")
            connections.close_all()
            if (stop or threading.Event()).wait(MAINTENANCE_SECONDS):
                return

    threading.Thread(target=maintain, daemon=True, name="pool-maintenance").start()
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    if ready is not None:
        ready.set()
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        service.close()
        pool.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def pool_from_settings(*, sandbox: bool) -> WarmPool:
    return WarmPool(
        PoolSettings(
            max_processes=settings.RUNNER_MAX_PROCESSES,
            max_per_version=settings.RUNNER_MAX_PER_VERSION,
            idle_seconds=settings.RUNNER_IDLE_SECONDS,
        ),
        sandbox=sandbox,
    )


# -- client -----------------------------------------------------------------------------------


class RunnerUnavailable(Exception):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("runner", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


_kept = threading.local()


def _kept_connection(path: str) -> tuple[_UnixConnection, bool]:
    """This thread's open connection to the runner at `path` and whether it was used before;
    a connection the runner has closed since, or one inherited through fork, is replaced."""
    kept = getattr(_kept, "connection", None)
    if kept is not None:
        connection, kept_path, pid = kept
        if kept_path == path and pid == os.getpid() and _still_open(connection):
            return connection, True
        _drop_kept_connection()
    connection = _UnixConnection(path, None)
    _kept.connection = (connection, path, os.getpid())
    return connection, False


def _still_open(connection: _UnixConnection) -> bool:
    """Idle and open: the runner sent nothing (a close would read as end of file)."""
    sock = connection.sock
    if sock is None:
        return True  # not connected yet, or closed by http.client after a response
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def _drop_kept_connection() -> None:
    kept = getattr(_kept, "connection", None)
    _kept.connection = None
    if kept is not None:
        kept[0].close()


class RunnerClient:
    """Requests to this host's runner, over one connection per thread that stays open
    between calls (the runner speaks HTTP/1.1 and keeps it alive)."""

    def __init__(self, path: Path | None = None):
        self.path = str(path or socket_path())

    def _request(self, method: str, route: str, body: dict | None, timeout: float) -> dict:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        connection, reused = _kept_connection(self.path)
        try:
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            try:
                connection.request(method, route, body=payload, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                # The runner closed the kept connection (it restarted) before it could read
                # the request: nothing ran, so send it once more on a new connection.
                _drop_kept_connection()
                connection, reused = _kept_connection(self.path)
                connection.timeout = timeout
                connection.request(method, route, body=payload, headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.will_close:
                _drop_kept_connection()
            return answer
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            _drop_kept_connection()
            raise RunnerUnavailable(f"the model runner is not running ({self.path})") from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            _drop_kept_connection()
            raise RunnerUnavailable(f"the model runner did not answer: {exc}") from exc
        except BaseException:
            # Interrupted mid-request (a timeout signal): the connection's state is unknown.
            _drop_kept_connection()
            raise

    def call(
        self,
        *,
        build_id: str,
        content_type: str,
        data,
        timeout: float,
        request_id: str,
        credential: str | None = None,
    ) -> dict:
        body = {
            "build_id": build_id,
            "content_type": content_type,
            "data": data,
            "timeout": timeout,
            "request_id": request_id,
            "credential": credential,
        }
        # The runner enforces the call's timeout; the socket waits a little longer.
        return self._request("POST", "/call", body, timeout + 30)

    def cancel(self, request_id: str) -> bool:
        return bool(
            self._request("POST", "/cancel", {"request_id": request_id}, 10).get("canceled")
        )

    def health(self) -> dict:
        return self._request("GET", "/health", None, 5)

    def is_up(self) -> bool:
        """Whether the runner answers. While this thread's connection to it is open and idle
        that is known without asking (a runner that stopped would have closed it)."""
        kept = getattr(_kept, "connection", None)
        if kept is not None:
            connection, path, pid = kept
            if (
                path == self.path
                and pid == os.getpid()
                and connection.sock is not None
                and _still_open(connection)
            ):
                return True
        try:
            self.health()
        except RunnerUnavailable:
            return False
        return True
