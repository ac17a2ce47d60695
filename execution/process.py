"""One model process speaking the runner protocol, sandboxed.

The process reads one JSON request per line on stdin and answers one JSON line per request
on its result channel: a pipe whose descriptor it is given (python and node shims), its own
stdout (`command` models), or the FIFO /tmp/algoout (Algorithmia ADK algorithms). Whatever
else it prints is captured (at most 64 KiB per request) and attached to the request it was
handling; the pipes are drained all the time, so a chatty model never blocks on them.

A process handles one request at a time. A request that outlives its timeout kills the
process and everything it started; so does a protocol violation, and so does the kernel
killing any part of it for memory. Whatever happens, dying included, the caller gets a
clear error (ModelTimeout, ModelCrashed) and the owner of the process (the pool, or a
build) starts a fresh one for the next call.

Each process gets its own cgroup when the host allows (see cgroups.py and sandbox.py for
the layers and how they degrade).
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import fcntl
import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.conf import settings

from .cgroups import CgroupError, ModelCgroup, cgroup_support
from .network import egress_socket
from .platform_api import PlatformApiDoor
from .sandbox import (
    SANDBOX_API_PORT,
    SANDBOX_PACKAGE_DIR,
    SANDBOX_SHIMS_DIR,
    ResourceLimits,
    apply_limits,
    confine,
    format_bytes,
    run_unsandboxed,
    sandbox_owner,
)

logger = logging.getLogger(__name__)

_LOG_LIMIT = 64 * 1024  # characters of output kept per request
_READ_SIZE = 64 * 1024
# How often a waiting call looks at the process (death, out-of-memory kills).
_POLL_SECONDS = 0.1
# At most this long, after an answer, for output the model wrote before it to be read.
_SETTLE_SECONDS = 0.05
_EOF = object()

# Started and not yet stopped: stopped when the platform process exits normally, so that no
# model (one started without bubblewrap outlives us) and no cgroup is left behind.
_RUNNING: weakref.WeakSet[ModelProcess] = weakref.WeakSet()


@atexit.register
def _stop_running_processes() -> None:
    for process in list(_RUNNING):
        with contextlib.suppress(Exception):
            process.stop()


@dataclass
class LaunchSpec:
    """How to start one model. Paths in `argv` may use the placeholders {package} and
    {shims}, resolved to the sandbox's paths (or the host's, without a sandbox)."""

    argv: list[str]
    package_dir: Path
    result_channel: Literal["fd", "stdout", "fifo"] = "fd"
    ready: Literal["handshake", "marker", "immediate"] = "handshake"
    ready_marker: str = ""
    env: dict[str, str] = field(default_factory=dict)
    read_only_paths: list[Path] = field(default_factory=list)
    network: bool = False
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    # The program serves the platform's API relay itself (a thread of the python shim or the
    # ADK's sitecustomize, shims/api_relay.py: serve_in_thread), so no relay process is
    # started beside it.
    hosts_api_relay: bool = False


@dataclass
class CallResult:
    request_id: str
    result: Any = None
    content_type: str = "json"
    error: dict | None = None
    stdout: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Command:
    """A model's command as it is run: `argv` (wrapped in the sandbox, or not), the
    environment and working directory it starts with, and what to call in the child just
    before exec (None: nothing)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None
    preexec: Callable[[], None] | None = None


def launch_command(
    spec: LaunchSpec,
    *,
    sandbox: bool,
    tmp_dir: str,
    argv: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    api_door: PlatformApiDoor | None = None,
) -> Command:
    """How `spec` is run, with `tmp_dir` (a host directory the model may write) as its /tmp:
    the sandbox's command or, without a sandbox, the unconfined one. `argv` (taken as it is,
    no placeholders) replaces the spec's own, to run something else exactly as the model is;
    `extra_env` adds to the model's environment; `api_door` (sandboxed only) lends the
    model the platform's API (ALGORITHMIA_API, ALGORITHMIA_API_KEY). The cgroup and the
    rlimits are not part of it: ModelProcess.start adds them."""
    package = SANDBOX_PACKAGE_DIR if sandbox else str(spec.package_dir)
    shims = SANDBOX_SHIMS_DIR if sandbox else str(Path(__file__).parent / "shims")
    tmp = "/tmp" if sandbox else tmp_dir  # noqa: S108 - the sandbox's own /tmp
    if argv is None:
        argv = [part.format(package=package, shims=shims) for part in spec.argv]
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": tmp,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.update({k: v.format(package=package, shims=shims) for k, v in spec.env.items()})
    env.update(extra_env or {})
    if sandbox and api_door is not None:
        env["ALGORITHMIA_API"] = f"http://127.0.0.1:{SANDBOX_API_PORT}"
        env["ALGORITHMIA_API_KEY"] = api_door.token
    if sandbox:
        confined = confine(
            argv,
            package_dir=spec.package_dir,
            tmp_dir=tmp_dir,
            read_only_paths=spec.read_only_paths,
            egress_socket=egress_socket() if spec.network else None,
            api_socket=api_door.socket_path if api_door is not None else None,
            api_relay_in_program=spec.hosts_api_relay,
            env=env,
        )
        # bubblewrap clears the environment and sets the model's itself (--setenv).
        return Command(confined.argv, {"PATH": env["PATH"]}, None, confined.preexec)
    unconfined = run_unsandboxed(
        argv, visible_paths=[spec.package_dir, tmp_dir, *spec.read_only_paths]
    )
    return Command(unconfined.argv, env, str(spec.package_dir), unconfined.preexec)


class ModelProcessError(Exception):
    error_type = "AlgorithmError"

    def __init__(self, message: str, *, output: str = ""):
        super().__init__(message)
        self.message = message
        self.output = output


class ModelStartError(ModelProcessError):
    error_type = "LoadingError"


class ModelCrashed(ModelProcessError):
    error_type = "AlgorithmError"


class ModelTimeout(ModelProcessError):
    error_type = "TimeoutError"


@dataclass(frozen=True)
class _Oversized:
    """An answer line longer than the limit; it was read and thrown away."""

    size: int


class ModelProcess:
    def __init__(self, spec: LaunchSpec, *, sandbox: bool, api_access: bool = False):
        """`api_access`: the model may reach the platform's API, as the caller of the call
        it is running (see platform_api.py); only in the sandbox, which gives the model a
        network namespace of its own to listen in."""
        self.spec = spec
        self.sandbox = sandbox
        self._api_door: PlatformApiDoor | None = None
        self._api_access = api_access and sandbox
        self.process: subprocess.Popen | None = None
        self._tmp_dir: str | None = None
        self._cgroup: ModelCgroup | None = None
        self._oom_kills_at_stop = 0
        self._results: queue.Queue = queue.Queue()
        self._output: list[str] = []
        self._output_size = 0
        self._output_dropped = 0
        self._output_lock = threading.Lock()
        # Output pipes still open, and how many of their readers hold a chunk not yet
        # captured: together they tell whether everything written so far has been read.
        self._io = threading.Condition()
        self._output_fds: set[int] = set()
        self._output_busy = 0
        self._readers: list[tuple[threading.Thread, bool]] = []
        self._wake_fds: tuple[int, int] | None = None
        self._ready_event = threading.Event()
        self.started_at: float | None = None
        self.calls = 0
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def tmp_dir(self) -> str | None:
        """The host directory that is the process's /tmp (None once stopped)."""
        return self._tmp_dir

    @property
    def cgroup(self) -> ModelCgroup | None:
        return self._cgroup

    def start(self, *, timeout: float = 300) -> None:
        spec = self.spec
        self._tmp_dir = tempfile.mkdtemp(prefix="model-tmp-")
        os.chmod(self._tmp_dir, 0o700)
        owner = sandbox_owner()
        if owner is not None:  # the platform is root; the model is not
            os.chown(self._tmp_dir, *owner)
        pass_fds: tuple[int, ...] = ()
        read_fd = write_fd = None
        result_env = {}
        if spec.result_channel == "fd":
            read_fd, write_fd = os.pipe()
            result_env["MARKETPLACE_RESULT_FD"] = str(write_fd)
            pass_fds = (write_fd,)
        elif spec.result_channel == "fifo":
            fifo = os.path.join(self._tmp_dir, "algoout")
            os.mkfifo(fifo, 0o600)
            if owner is not None:
                os.chown(fifo, *owner)
            # Opened read-write, the FIFO never reports end-of-file between the writer's
            # open/close cycles (the ADK reopens it for every response).
            read_fd = os.open(fifo, os.O_RDWR)

        try:
            if self._api_access:
                self._api_door = PlatformApiDoor()
                self._api_door.start()
            command = launch_command(
                spec,
                sandbox=self.sandbox,
                tmp_dir=self._tmp_dir,
                extra_env=result_env,
                api_door=self._api_door,
            )
        except BaseException:
            for fd in (read_fd, write_fd):
                if fd is not None:
                    os.close(fd)
            self._cleanup_tmp()
            self._close_api_door()
            raise

        try:
            self._cgroup = self._make_cgroup()
        except ModelStartError:
            for fd in (read_fd, write_fd):
                if fd is not None:
                    os.close(fd)
            self._cleanup_tmp()
            raise
        cgroup, limits = self._cgroup, spec.limits
        limit_data = cgroup is None or not cgroup.has("memory")

        def prepare_child() -> None:  # in the child, between fork and exec
            if cgroup is not None:
                cgroup.enter()
            apply_limits(limits, limit_data=limit_data)
            if command.preexec is not None:
                command.preexec()

        try:
            self.process = subprocess.Popen(  # noqa: S603 - argv built from the manifest's runtime
                command.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=command.env,
                cwd=command.cwd,
                pass_fds=pass_fds,
                start_new_session=True,
                preexec_fn=prepare_child,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            if read_fd is not None:
                os.close(read_fd)
            self._remove_cgroup()
            self._cleanup_tmp()
            self._close_api_door()
            raise ModelStartError(f"cannot start the model: {exc}") from exc
        finally:
            if write_fd is not None:
                os.close(write_fd)
        self.started_at = time.monotonic()
        _RUNNING.add(self)
        os.set_blocking(self.process.stdin.fileno(), False)

        self._wake_fds = os.pipe()
        stdout, stderr = self.process.stdout, self.process.stderr
        if spec.result_channel == "stdout":
            self._spawn_reader(stdout.fileno(), self._result_sink(), stdout.close, "result")
        else:
            self._spawn_reader(stdout.fileno(), self._output_sink(), stdout.close, "stdout")
            self._spawn_reader(
                read_fd,
                self._result_sink(),
                lambda: os.close(read_fd),
                "result",
                sees_eof=spec.result_channel != "fifo",
            )
        self._spawn_reader(stderr.fileno(), self._output_sink(), stderr.close, "stderr")
        self._wait_ready(timeout)
        door = self._api_door
        if door is not None and not door.relay_ready.wait(timeout):
            self._fail_start("the sandbox's relay to the platform's API did not start")

    def stop(self) -> None:
        """Kill the process and everything it started, read what is left of its output,
        and remove its cgroup and its /tmp. Safe to call more than once, from any thread."""
        with self._stop_lock:
            process = self.process
            if process is not None and process.poll() is None:
                # Only while the leader is not reaped is its pid surely still our group's.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
            if self._cgroup is not None:
                self._oom_kills_at_stop = self._cgroup.oom_kills()
                self._cgroup.kill()
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
            self._stop_readers()
            if process is not None and process.stdin:
                with contextlib.suppress(OSError, ValueError):
                    process.stdin.close()
            self._remove_cgroup()
            self._cleanup_tmp()
            self._close_api_door()
            _RUNNING.discard(self)

    # -- calls ------------------------------------------------------------------------------

    def call(
        self, content_type: str, data: Any, *, timeout: float, credential: str | None = None
    ) -> CallResult:
        """Send one request and wait for its answer. `data` is JSON, text, or base64 for
        binary, as the protocol carries it. `credential` is what the model's requests to the
        platform's API act with while this call runs, and only then (None: they are
        refused)."""
        with self._lock:
            door = self._api_door
            if door is not None:
                door.call_open(credential, time.monotonic() + timeout)
            try:
                return self._call(content_type, data, timeout=timeout)
            finally:
                if door is not None:
                    door.call_closed()

    def _call(self, content_type: str, data: Any, *, timeout: float) -> CallResult:
        if not self.alive:
            raise ModelCrashed("the model process is not running", output=self.output())
        if self._out_of_memory():
            raise self._crashed()
        request_id = uuid.uuid4().hex
        self._take_output()
        self._drain_results()
        line = json.dumps({"id": request_id, "content_type": content_type, "data": data})
        started = time.monotonic()
        deadline = started + timeout
        try:
            sent = self._send(line.encode() + b"\n", deadline)
        except (OSError, ValueError):  # the model closed its stdin, or was stopped
            raise self._crashed() from None
        if not sent:
            raise self._timed_out(timeout)
        message = self._wait_answer(request_id, deadline, timeout)
        duration = time.monotonic() - started
        self._settle_output()
        if self._out_of_memory():
            raise self._crashed()
        self.calls += 1
        if isinstance(message, _Oversized):
            limit = format_bytes(self.spec.limits.answer_bytes)
            error = {
                "message": f"the model's answer ({format_bytes(message.size)}) is over "
                f"the {limit} limit",
                "error_type": "AlgorithmError",
            }
            return CallResult(
                request_id, error=error, stdout=self._take_output(), duration=duration
            )
        captured = self._take_output(before=message.get("stdout") or "")
        if "error" in message:
            error = (
                message["error"]
                if isinstance(message["error"], dict)
                else {"message": str(message["error"])}
            )
            error.setdefault("error_type", "AlgorithmError")
            error.setdefault("message", "the model failed")
            return CallResult(request_id, error=error, stdout=captured, duration=duration)
        content_type = message.get("content_type")
        if content_type is None and isinstance(message.get("metadata"), dict):
            content_type = message["metadata"].get("content_type")  # the ADK's shape
        return CallResult(
            request_id,
            result=message.get("result"),
            content_type=content_type or "json",
            stdout=captured,
            duration=duration,
        )

    def output(self) -> str:
        with self._output_lock:
            return "".join(self._output) + self._dropped_note(self._output_dropped)

    # -- internals: calls -------------------------------------------------------------------

    def _send(self, line: bytes, deadline: float) -> bool:
        """Write the request without ever blocking past the deadline (a model that does not
        read its stdin cannot hold the caller); False when the deadline passed."""
        fd = self.process.stdin.fileno()
        view = memoryview(line)
        poller = None
        while view:
            with contextlib.suppress(BlockingIOError):  # the pipe is full: wait below
                view = view[os.write(fd, view) :]
            if not view:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if poller is None:
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
            poller.poll(min(remaining, _POLL_SECONDS) * 1000)
        return True

    def _wait_answer(self, request_id: str, deadline: float, timeout: float):
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(timeout)
            try:
                message = self._results.get(timeout=min(remaining, _POLL_SECONDS))
            except queue.Empty:
                if self._out_of_memory() or (not self.alive and self._results.empty()):
                    raise self._crashed() from None
                continue
            if message is _EOF:
                raise self._crashed()
            if isinstance(message, _Oversized):
                return message
            if not isinstance(message, dict):
                self.stop()
                raise ModelCrashed(
                    f"the model broke the runner protocol: {message!r:.200}",
                    output=self._take_output(),
                )
            if message.get("id") not in (request_id, None):
                continue  # a late answer to an earlier, abandoned request
            return message

    def _settle_output(self) -> None:
        """Wait until what the model wrote on stdout/stderr before answering has been read:
        no wait at all when it wrote nothing, and never more than _SETTLE_SECONDS (a model
        that never stops printing)."""
        deadline = None
        with self._io:
            while self._output_busy or any(_unread_bytes(fd) for fd in self._output_fds):
                if deadline is None:
                    deadline = time.monotonic() + _SETTLE_SECONDS
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._io.wait(remaining)

    def _timed_out(self, timeout: float) -> ModelProcessError:
        if self._out_of_memory():
            return self._crashed()
        self.stop()
        return ModelTimeout(
            f"the model did not answer within {timeout:g} seconds; it was stopped",
            output=self._take_output(),
        )

    def _crashed(self) -> ModelCrashed:
        """The process died (or lost part of itself): stop what is left and say why."""
        if self.process is not None and not self._out_of_memory():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        message = self._death_message()
        self.stop()
        return ModelCrashed(message, output=self._take_output())

    def _out_of_memory(self) -> bool:
        cgroup = self._cgroup
        kills = cgroup.oom_kills() if cgroup is not None else self._oom_kills_at_stop
        return kills > 0

    def _death_message(self) -> str:
        limits = self.spec.limits
        if self._out_of_memory():
            return f"the model ran out of memory (limit {format_bytes(limits.memory_bytes)})"
        code = self.process.poll() if self.process else None
        if code is None:
            return "the model process stopped answering"
        number = None
        if code < 0:
            number = -code
        elif self.sandbox and code > 128:
            number = code - 128  # bubblewrap reports a death by signal N as exit code 128+N
        if number in signal.Signals._value2member_map_:
            name = signal.Signals(number).name
            reason = {
                "SIGKILL": " (killed: over a limit, or by the system)",
                "SIGXCPU": f" (over its CPU time limit of {limits.cpu_seconds} s)",
                "SIGXFSZ": (
                    f" (wrote a file over the size limit of {format_bytes(limits.file_size_bytes)})"
                ),
                "SIGSEGV": " (segmentation fault)",
                "SIGBUS": " (bus error)",
                "SIGABRT": " (aborted)",
            }.get(name, "")
            return f"the model process died from signal {name}{reason}"
        return f"the model process exited with code {code}"

    # -- internals: start -------------------------------------------------------------------

    def _make_cgroup(self) -> ModelCgroup | None:
        required = getattr(settings, "SANDBOX_CGROUPS", "auto") == "required"
        try:
            support = cgroup_support()
            if not support.enabled:
                return None
            return ModelCgroup.create(self.spec.limits, support=support)
        except CgroupError as exc:
            if required:
                raise ModelStartError(str(exc)) from exc
            logger.warning("starting a model without its cgroup: %s", exc)
            return None

    def _wait_ready(self, timeout: float) -> None:
        spec = self.spec
        if spec.ready == "immediate":
            time.sleep(0.05)
            if not self.alive:
                self._fail_start(self._exit_message())
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if spec.ready == "marker":
                if self._ready_event.wait(timeout=0.1):
                    return
            else:
                try:
                    message = self._results.get(timeout=0.1)
                except queue.Empty:
                    message = None
                if isinstance(message, dict) and "ready" in message:
                    if message["ready"]:
                        return
                    error = message.get("error") or {}
                    self.stop()
                    raise ModelStartError(
                        f"{error.get('error_type', 'LoadingError')}: "
                        f"{error.get('message', 'the model failed to load')}",
                        output=(error.get("stacktrace") or "") + self.output(),
                    )
            if not self.alive or self._out_of_memory():
                self._fail_start(self._exit_message())
        self.stop()
        raise ModelStartError(
            f"the model did not start within {timeout:g} seconds", output=self.output()
        )

    def _exit_message(self) -> str:
        if self.process is not None and not self._out_of_memory():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        return self._death_message()

    def _fail_start(self, message: str) -> None:
        self.stop()
        raise ModelStartError(message, output=self.output())

    # -- internals: reading the pipes -------------------------------------------------------

    def _spawn_reader(self, fd: int, sink, close, name: str, *, sees_eof: bool = True) -> None:
        """A thread that reads `fd` until end-of-file (or until stop() wakes it), hands each
        chunk to `sink`, and then closes the descriptor itself, so that no other thread can
        close it under a read."""
        is_output = name != "result"
        wake_fd = self._wake_fds[0]
        if is_output:
            with self._io:
                self._output_fds.add(fd)

        def read() -> None:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(wake_fd, select.POLLIN)
            try:
                while True:
                    if any(ready == wake_fd for ready, _event in poller.poll()):
                        break
                    if is_output:
                        with self._io:
                            self._output_busy += 1
                    try:
                        try:
                            chunk = os.read(fd, _READ_SIZE)
                        except OSError:
                            chunk = b""
                        sink(chunk)
                    finally:
                        if is_output:
                            with self._io:
                                self._output_busy -= 1
                                self._io.notify_all()
                    if not chunk:
                        break
            except Exception:  # a reader must never die silently with the pipe unread
                logger.exception("reading the model's %s failed", name)
            finally:
                if is_output:
                    with self._io:
                        self._output_fds.discard(fd)
                        self._io.notify_all()
                with contextlib.suppress(OSError, ValueError):
                    close()
                if not is_output:
                    self._results.put(_EOF)

        thread = threading.Thread(target=read, name=f"model-{name}", daemon=True)
        thread.start()
        self._readers.append((thread, sees_eof))

    def _stop_readers(self) -> None:
        """Let the readers read to end-of-file (the process is dead by now, so that is
        quick), then wake any still waiting (a FIFO, or a pipe an escaped process holds)."""
        readers, self._readers = self._readers, []
        deadline = time.monotonic() + 1.0
        for thread, sees_eof in readers:
            if sees_eof:
                thread.join(max(0.0, deadline - time.monotonic()))
        if self._wake_fds is None:
            return
        if any(thread.is_alive() for thread, _ in readers):
            os.write(self._wake_fds[1], b"x")
            for thread, _ in readers:
                thread.join(1.0)
        if any(thread.is_alive() for thread, _ in readers):
            logger.warning("a reader of model process %s is stuck", self.pid)
            return  # leave the wake pipe open for it
        for fd in self._wake_fds:
            os.close(fd)
        self._wake_fds = None

    def _result_sink(self):
        """Splits the result channel into lines of at most the answer size limit."""
        limit = self.spec.limits.answer_bytes
        line = bytearray()
        oversized = 0

        def sink(chunk: bytes) -> None:
            nonlocal oversized
            start = 0
            while True:
                end = chunk.find(b"\n", start) if chunk else -1
                piece = chunk[start:] if end < 0 else chunk[start:end]
                if oversized:
                    oversized += len(piece)
                else:
                    line.extend(piece)
                    if len(line) > limit:
                        oversized = len(line)
                        line.clear()
                if end < 0 and chunk:
                    return
                # A complete line, or end-of-file after a last unterminated one.
                if oversized:
                    self._results.put(_Oversized(oversized))
                elif line:
                    self._on_result_line(bytes(line))
                line.clear()
                oversized = 0
                if end < 0:
                    return
                start = end + 1

        return sink

    def _on_result_line(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            message = json.loads(raw)
        except ValueError:
            message = raw.decode("utf-8", errors="replace").strip()
        if self.spec.result_channel == "stdout" and not isinstance(message, dict):
            # a command model's stray print is output, not a result
            self._capture(raw.decode("utf-8", errors="replace") + "\n")
            return
        self._results.put(message)

    def _output_sink(self):
        """Decodes output as UTF-8 and captures it; until a `marker`-ready model is ready,
        splits it into lines to find the marker (which is not output)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        marker = self.spec.ready_marker if self.spec.ready == "marker" else None
        pending = ""

        def sink(chunk: bytes) -> None:
            nonlocal pending
            text = decoder.decode(chunk, final=not chunk)
            if marker is None or (self._ready_event.is_set() and not pending):
                self._capture(text)
                return
            lines = (pending + text).splitlines(keepends=True)
            pending = ""
            if chunk and lines and not lines[-1].endswith(("\n", "\r")):
                pending = lines.pop()
            for line in lines:
                if not self._ready_event.is_set() and line.strip() == marker:
                    self._ready_event.set()
                else:
                    self._capture(line)
            if len(pending) > _LOG_LIMIT or (pending and self._ready_event.is_set()):
                self._capture(pending)
                pending = ""

        return sink

    def _capture(self, text: str) -> None:
        if not text:
            return
        with self._output_lock:
            kept = text[: _LOG_LIMIT - self._output_size]
            if kept:
                self._output.append(kept)
                self._output_size += len(kept)
            self._output_dropped += len(text) - len(kept)

    def _take_output(self, *, before: str = "") -> str:
        """What was captured since the last take (after `before`, what the shim captured
        itself), cut at _LOG_LIMIT characters."""
        with self._output_lock:
            text = before + "".join(self._output)
            dropped = self._output_dropped
            self._output.clear()
            self._output_size = 0
            self._output_dropped = 0
        if len(text) > _LOG_LIMIT:
            dropped += len(text) - _LOG_LIMIT
            text = text[:_LOG_LIMIT]
        return text + self._dropped_note(dropped)

    @staticmethod
    def _dropped_note(dropped: int) -> str:
        if not dropped:
            return ""
        return (
            f"\n[output cut: {dropped} more characters were dropped; at most "
            f"{format_bytes(_LOG_LIMIT)} of output is kept per request]\n"
        )

    def _drain_results(self) -> None:
        while True:
            try:
                message = self._results.get_nowait()
            except queue.Empty:
                return
            if message is _EOF:
                self._results.put(_EOF)
                return

    def _remove_cgroup(self) -> None:
        if self._cgroup is not None:
            self._oom_kills_at_stop = self._cgroup.oom_kills()
            self._cgroup.remove()
            self._cgroup = None

    def _close_api_door(self) -> None:
        if self._api_door is not None:
            self._api_door.stop()
            self._api_door = None

    def _cleanup_tmp(self) -> None:
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None


def _unread_bytes(fd: int) -> int:
    """How many bytes wait in a pipe."""
    try:
        answer = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int.from_bytes(answer, sys.byteorder)
