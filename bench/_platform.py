"""Start a whole platform (what `make run` starts) in child processes for a benchmark, on a
free port and a data directory of its own, and stop it afterwards."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Platform:
    def __init__(
        self,
        *,
        web_workers: int = 2,
        worker_concurrency: int = 1,
        env: dict | None = None,
        root: Path = ROOT,
    ):
        """`root`: the checkout whose code the platform runs (another one compares two
        versions of the code in the same run)."""
        self.directory = Path(tempfile.mkdtemp(prefix="bench-platform-"))
        self.directory.chmod(0o755)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.directory / "platform.log"
        child_env = {
            k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}
        }
        child_env.update(
            {
                "MARKETPLACE_VAR_DIR": str(self.directory / "var"),
                "PYTHONUNBUFFERED": "1",
                **(env or {}),
            }
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(root / "manage.py"),
                "run_platform",
                "--port",
                str(self.port),
                "--web-workers",
                str(web_workers),
                "--worker-concurrency",
                str(worker_concurrency),
                "--no-catalog",
            ],
            cwd=root,
            env=child_env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.key = ""

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text())
            try:
                status, body = get_json(f"{self.url}/readyz")
                if status == 200 and body["components"]["workers"]["status"] == "ok":
                    match = re.search(r"API key:\s+(mk_\w+)", self.log.read_text())
                    self.key = match.group(1) if match else ""
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise RuntimeError("the platform did not become ready:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) spent so far by each part of this platform: the web
        server (gunicorn's master and workers), the Celery worker's main process and its pool,
        the worker that runs queued calls (`calls`), the runner with its sandboxed model
        processes, and the PostgreSQL server the platform
        started. Processes that exited are not counted: compare two readings taken while
        nothing restarts."""
        parts: dict[str, float] = {}

        def add(part: str, process: psutil.Process) -> None:
            try:
                times = process.cpu_times()
            except psutil.Error:
                return
            parts[part] = parts.get(part, 0.0) + times.user + times.system

        supervisor = psutil.Process(self.process.pid)
        for child in supervisor.children():
            try:
                command = " ".join(child.cmdline())
                descendants = child.children(recursive=True)
            except psutil.Error:
                continue
            if "run_runner" in command:
                part = "runner"
            elif "gunicorn" in command:
                part = "web"
            elif "calls@" in command:
                part = "calls worker"
            elif "celery" in command:
                add("worker main", child)
                for descendant in descendants:
                    add("worker pool", descendant)
                continue
            else:
                part = "other"
            for process in (child, *descendants):
                add(part, process)
        directory = str(self.directory)
        for process in psutil.process_iter(["name", "cmdline"]):
            if process.info["name"] == "postgres" and directory in " ".join(
                process.info["cmdline"] or ()
            ):
                add("postgres", process)
                for backend in process.children():
                    add("postgres", backend)
        return parts

    def __enter__(self) -> Platform:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # __exit__ is not called when __enter__ fails
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def publish(platform: Platform, folder: Path) -> None:
    """`marketplace publish` of `folder` as the next major, public version of demo/NAME, with
    the platform's demo key (its team is "demo"), as a user would from a shell."""
    env = {
        **os.environ,
        "MARKETPLACE_API_URL": platform.url,
        "MARKETPLACE_API_KEY": platform.key,
        "XDG_CONFIG_HOME": str(folder.parent),
    }
    arguments = ["publish", str(folder), "--owner", "demo", "--bump", "major"]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "marketplace"), *arguments, "--visibility", "public"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"publish failed:\n{result.stdout}\n{result.stderr}")


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds used so far by a process and all its descendants alive
    now (web workers, runner, model processes, PostgreSQL, Celery)."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
