"""The runner's socket serves the platform's own user and nobody else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from execution.pool import PoolSettings, WarmPool
from execution.runner_service import RunnerClient
from tests.runner_thread import runner_serving

NOBODY = 65534

# A client of the standard library only: it runs as another user, who may read nothing of ours.
CLIENT = textwrap.dedent(
    """
    import http.client, socket, sys

    class Connection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(sys.argv[1])

    connection = Connection("runner", timeout=10)
    try:
        connection.request("GET", "/health")
        print("answered", connection.getresponse().status)
    except (OSError, http.client.HTTPException) as error:
        print("refused", type(error).__name__)
    """
)


@pytest.fixture
def runner_socket(settings, transactional_db):
    """A runner serving in a thread on the default socket path under a VAR_DIR of its own."""
    directory = Path(tempfile.mkdtemp(prefix="runner-sock-"))
    settings.VAR_DIR = directory / "var"
    settings.RUNNER_SOCKET = ""
    path = directory / "var" / "run" / "runner.sock"
    pool = WarmPool(PoolSettings(max_processes=1, max_per_version=1), sandbox=False)
    with runner_serving(path, pool):
        yield path
    shutil.rmtree(directory, ignore_errors=True)


def test_the_socket_is_the_platform_users_alone_and_it_answers_the_platform(runner_socket):
    assert runner_socket.stat().st_mode & 0o777 == 0o600
    assert runner_socket.parent.stat().st_mode & 0o777 == 0o700
    assert runner_socket.stat().st_uid == os.geteuid()
    assert RunnerClient(runner_socket).health()["status"] == "ok"


def _as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _interpreter_for_nobody() -> str | None:
    """A Python that uid 65534 may run (ours may live under /root)."""
    for candidate in (sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin")):
        if candidate and _runnable_by_nobody(candidate):
            return candidate
    return None


def _runnable_by_nobody(path: str) -> bool:
    try:
        probe = subprocess.run(
            [path, "-I", "-c", "pass"],
            preexec_fn=_as_nobody,
            cwd="/",
            capture_output=True,
            check=False,
        )
    except PermissionError:
        return False
    return probe.returncode == 0


def test_a_connection_from_another_user_is_closed_unanswered(runner_socket, caplog):
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another user (uid 65534)")
    interpreter = _interpreter_for_nobody()
    if interpreter is None:
        pytest.skip("no Python interpreter that uid 65534 may run")
    # Open the way on purpose (a mistaken mode, a shared volume): the peer check must still
    # refuse what the file system lets through.
    directory = runner_socket.parents[2]
    for opened in (directory, directory / "var", runner_socket.parent):
        opened.chmod(0o755)
    runner_socket.chmod(0o666)
    result = subprocess.run(
        [interpreter, "-I", "-c", CLIENT, str(runner_socket)],
        preexec_fn=_as_nobody,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.startswith("refused"), (result.stdout, result.stderr)
    assert f"refused a connection from uid {NOBODY}" in caplog.text
    # The platform itself is still served.
    assert RunnerClient(runner_socket).health()["status"] == "ok"
