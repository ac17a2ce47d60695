"""One model process speaking the runner protocol, sandboxed.

The process reads one JSON request per line on stdin and answers one JSON line per request
on its result channel: a pipe whose descriptor it is given (python and node shims), its own
stdout (`command` models), or the FIFO /tmp/algoout (Algorithmia ADK algorithms). Whatever
else it prints is captured and attached to the request it was handling.

A process handles one request at a time. A request that outlives its timeout kills the
process; so does a protocol violation. Either way the caller gets a clear error and the
owner of the process (the pool, or a build) starts a fresh one for the next call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .sandbox import (
    SANDBOX_PACKAGE_DIR,
    SANDBOX_SHIMS_DIR,
    ResourceLimits,
    apply_limits,
    bubblewrap_argv,
)

logger = logging.getLogger(__name__)

_LOG_LIMIT = 64 * 1024
_EOF = object()


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


class ModelProcess:
    def __init__(self, spec: LaunchSpec, *, sandbox: bool):
        self.spec = spec
        self.sandbox = sandbox
        self.process: subprocess.Popen | None = None
        self._tmp_dir: str | None = None
        self._results: queue.Queue = queue.Queue()
        self._output: list[str] = []
        self._output_lock = threading.Lock()
        self._ready_event = threading.Event()
        self._result_reader = None
        self.started_at: float | None = None
        self.calls = 0
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, *, timeout: float = 300) -> None:
        spec = self.spec
        self._tmp_dir = tempfile.mkdtemp(prefix="model-tmp-")
        os.chmod(self._tmp_dir, 0o700)
        package = SANDBOX_PACKAGE_DIR if self.sandbox else str(spec.package_dir)
        shims = SANDBOX_SHIMS_DIR if self.sandbox else str(Path(__file__).parent / "shims")
        tmp = "/tmp" if self.sandbox else self._tmp_dir  # noqa: S108 - the sandbox's own /tmp
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

        pass_fds: tuple[int, ...] = ()
        read_fd = write_fd = None
        if spec.result_channel == "fd":
            read_fd, write_fd = os.pipe()
            env["MARKETPLACE_RESULT_FD"] = str(write_fd)
            pass_fds = (write_fd,)
        elif spec.result_channel == "fifo":
            fifo = os.path.join(self._tmp_dir, "algoout")
            os.mkfifo(fifo, 0o600)
            # Opened read-write, the FIFO never reports end-of-file between the writer's
            # open/close cycles (the ADK reopens it for every response).
            read_fd = os.open(fifo, os.O_RDWR)

        if self.sandbox:
            full_argv = (
                bubblewrap_argv(
                    package_dir=spec.package_dir,
                    tmp_dir=self._tmp_dir,
                    read_only_paths=spec.read_only_paths,
                    network=spec.network,
                    env=env,
                )
                + argv
            )
            child_env = {"PATH": env["PATH"]}
            cwd = None
        else:
            full_argv, child_env, cwd = argv, env, str(spec.package_dir)

        limits = spec.limits
        try:
            self.process = subprocess.Popen(  # noqa: S603 - argv built from the manifest's runtime
                full_argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_env,
                cwd=cwd,
                pass_fds=pass_fds,
                start_new_session=True,
                preexec_fn=lambda: apply_limits(limits),
            )
        except OSError as exc:
            self._cleanup_tmp()
            raise ModelStartError(f"cannot start the model: {exc}") from exc
        finally:
            if write_fd is not None:
                os.close(write_fd)
        self.started_at = time.monotonic()

        if spec.result_channel == "stdout":
            self._spawn_line_reader(self.process.stdout, self._on_result_line, "result")
        else:
            self._spawn_line_reader(self.process.stdout, self._on_output_line, "stdout")
            self._spawn_line_reader(os.fdopen(read_fd, "rb"), self._on_result_line, "result")
        self._spawn_line_reader(self.process.stderr, self._on_output_line, "stderr")
        self._wait_ready(timeout)

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if process is not None:
            for stream in (process.stdin, process.stdout, process.stderr):
                with contextlib.suppress(OSError, ValueError):
                    if stream:
                        stream.close()
        self._cleanup_tmp()

    # -- calls ------------------------------------------------------------------------------

    def call(self, content_type: str, data: Any, *, timeout: float) -> CallResult:
        """Send one request and wait for its answer. `data` is JSON, text, or base64 for
        binary, as the protocol carries it."""
        with self._lock:
            if not self.alive:
                raise ModelCrashed("the model process is not running", output=self.output())
            request_id = uuid.uuid4().hex
            self._take_output()
            self._drain_results()
            line = json.dumps({"id": request_id, "content_type": content_type, "data": data})
            started = time.monotonic()
            try:
                self.process.stdin.write(line.encode() + b"\n")
                self.process.stdin.flush()
            except (BrokenPipeError, OSError):
                self._reap()
                raise ModelCrashed(self._death_message(), output=self._take_output()) from None
            deadline = started + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    output = self._take_output()
                    self.stop()
                    raise ModelTimeout(
                        f"the model did not answer within {timeout:g} seconds", output=output
                    )
                try:
                    message = self._results.get(timeout=min(remaining, 0.5))
                except queue.Empty:
                    if not self.alive and self._results.empty():
                        self._reap()
                        raise ModelCrashed(
                            self._death_message(), output=self._take_output()
                        ) from None
                    continue
                if message is _EOF:
                    self._reap()
                    raise ModelCrashed(self._death_message(), output=self._take_output())
                if not isinstance(message, dict):
                    output = self._take_output()
                    self.stop()
                    raise ModelCrashed(
                        f"the model broke the runner protocol: {message!r:.200}", output=output
                    )
                if message.get("id") not in (request_id, None):
                    continue  # a late answer to an earlier, abandoned request
                break
            self.calls += 1
            duration = time.monotonic() - started
            # Give the output readers a moment to catch up with what was printed.
            time.sleep(0.005)
            captured = message.get("stdout") or ""
            captured += self._take_output()
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
            return "".join(self._output)

    # -- internals ------------------------------------------------------------------------

    def _wait_ready(self, timeout: float) -> None:
        spec = self.spec
        if spec.ready == "immediate":
            time.sleep(0.05)
            if not self.alive:
                self._reap()
                raise ModelStartError(self._death_message(), output=self.output())
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
                    output = self.output()
                    self.stop()
                    raise ModelStartError(
                        f"{error.get('error_type', 'LoadingError')}: "
                        f"{error.get('message', 'the model failed to load')}",
                        output=(error.get("stacktrace") or "") + output,
                    )
                if message is _EOF or message is not None:
                    pass
            if not self.alive:
                self._reap()
                raise ModelStartError(self._death_message(), output=self.output())
        output = self.output()
        self.stop()
        raise ModelStartError(f"the model did not start within {timeout:g} seconds", output=output)

    def _spawn_line_reader(self, stream, handler, name: str) -> None:
        def read() -> None:
            try:
                for raw in iter(stream.readline, b""):
                    handler(raw.decode("utf-8", errors="replace"))
            except (OSError, ValueError):
                pass
            finally:
                if name == "result":
                    self._results.put(_EOF)

        thread = threading.Thread(target=read, name=f"model-{name}", daemon=True)
        thread.start()
        if name == "result":
            self._result_reader = thread

    def _on_result_line(self, line: str) -> None:
        if not line.strip():
            return
        try:
            message = json.loads(line)
        except ValueError:
            message = line.strip()
        if self.spec.result_channel == "stdout" and not isinstance(message, dict):
            self._on_output_line(line)  # a command model's stray print is output, not a result
            return
        self._results.put(message)

    def _on_output_line(self, line: str) -> None:
        if self.spec.ready == "marker" and line.strip() == self.spec.ready_marker:
            self._ready_event.set()
            return
        with self._output_lock:
            total = sum(len(chunk) for chunk in self._output)
            if total < _LOG_LIMIT:
                self._output.append(line[: _LOG_LIMIT - total])

    def _take_output(self) -> str:
        with self._output_lock:
            text = "".join(self._output)
            self._output.clear()
            return text

    def _drain_results(self) -> None:
        while True:
            try:
                message = self._results.get_nowait()
            except queue.Empty:
                return
            if message is _EOF:
                self._results.put(_EOF)
                return

    def _reap(self) -> None:
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        self.stop()

    def _death_message(self) -> str:
        code = self.process.poll() if self.process else None
        if code is None:
            return "the model process stopped answering"
        if code < 0:
            name = (
                signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else code
            )
            reason = {
                "SIGKILL": " (killed: out of memory or over a limit?)",
                "SIGXCPU": " (over its CPU time limit)",
                "SIGSEGV": " (segmentation fault)",
            }.get(str(name), "")
            return f"the model process died from signal {name}{reason}"
        return f"the model process exited with code {code}"

    def _cleanup_tmp(self) -> None:
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None
