"""A whole platform (`manage.py run_platform`, what `make run` starts) in child processes,
for tests that need real separate processes: web, runner, Celery worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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


def get_json(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Platform:
    def __init__(self, var_dir: Path, extra_env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
        }
        env.update({"MARKETPLACE_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"})
        env.update(extra_env or {})
        self.log = var_dir.parent / f"run-{self.port}.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_platform",
                "--port",
                str(self.port),
                "--web-workers",
                "2",
                "--worker-concurrency",
                "1",
                "--no-catalog",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                status, body = get_json(f"{self.base}/readyz")
                if status == 200 and body["components"]["workers"]["status"] == "ok":
                    return body
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready in time: {body}\n{self.output()}")

    def interrupt(self) -> int:
        descendants = psutil.Process(self.process.pid).children(recursive=True)
        os.kill(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=60)
        _gone, alive = psutil.wait_procs(descendants, timeout=10)
        assert not alive, f"left behind: {alive}"
        return code


def processes_mentioning(text: str) -> list:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if text in cmdline:
            found.append((proc.info["pid"], cmdline))
    return found


def loopback_services_available() -> bool:
    for port in (5432, 6379):
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return False
    return True


def publish_with_cli(
    platform: Platform,
    secret: str,
    directory: Path,
    *,
    name: str,
    predict: str,
    sample_input: str | None,
    owner: str = "demo",
    requirements: str = "",
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Publish a one-file Python model with the `marketplace` tool, as a CI job would;
    with check=False, return the tool's outcome whatever it is."""
    folder = directory / name
    folder.mkdir()
    manifest = f'name = "{name}"\nruntime = "python"\nentrypoint = "predict.py:apply"\n'
    if sample_input is not None:
        manifest += f"[io]\nsample_input = {json.dumps(sample_input)}\n"
    (folder / "model.toml").write_text(manifest)
    (folder / "predict.py").write_text(predict)
    if requirements:
        (folder / "requirements.txt").write_text(requirements)
    env = {
        **os.environ,
        "MARKETPLACE_API_URL": platform.base,
        "MARKETPLACE_API_KEY": secret,
        "XDG_CONFIG_HOME": str(directory / "config"),
    }
    published = subprocess.run(
        [
            str(Path(sys.executable).parent / "marketplace"),
            "publish",
            str(folder),
            "--owner",
            owner,
            "--bump",
            "major",
            "--visibility",
            "public",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check:
        assert published.returncode == 0, (
            published.stdout + published.stderr + platform.output()[-5000:]
        )
    return published


def call_text(platform: Platform, secret: str, path: str, text: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{platform.base}{path}",
        data=text.encode(),
        method="POST",
        headers={"Authorization": secret, "Content-Type": "text/plain"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def demo_key(platform: Platform) -> str:
    return platform.output().split("API key:", 1)[1].split()[0]
