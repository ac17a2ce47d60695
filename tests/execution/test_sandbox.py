"""The sandbox against hostile models: each one is a small Python package run through the
same ModelProcess the pool and the builds use. For each: the caller gets the right error
with a helpful message, the damage stays inside (nothing written on the host, no process
left over, the kernel limits held), and a good model still works in a fresh process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from execution import cgroups
from execution.process import (
    LaunchSpec,
    ModelCrashed,
    ModelProcess,
    ModelStartError,
    ModelTimeout,
)
from execution.runtimes import ModelSpec, get_runtime
from execution.sandbox import ResourceLimits, _probe_bubblewrap, sandbox_status

pytestmark = pytest.mark.slow

MiB = 1024**2
SMALL = {"memory_bytes": 256 * MiB, "processes": 32, "file_size_bytes": 64 * MiB}
TIMEOUT = 2.0

needs_bwrap = pytest.mark.skipif(
    not _probe_bubblewrap()[0],
    reason=f"the sandbox needs bubblewrap ({_probe_bubblewrap()[1]}); CI installs it",
)

GOOD = """
def apply(data):
    return data
"""


@pytest.fixture(scope="module")
def shared_var(tmp_path_factory):
    """One VAR_DIR for the module: every model here has no requirements, so they all share
    one environment, built once."""
    return tmp_path_factory.mktemp("var")


@pytest.fixture(autouse=True)
def _isolated_storage(settings, shared_var, tmp_path):
    settings.VAR_DIR = shared_var
    settings.MEDIA_ROOT = tmp_path / "media"


def model(tmp_path: Path, code: str, *, network: bool = False, **limits) -> LaunchSpec:
    """A python-runtime model whose predict.py is `code`, with small limits."""
    package = tmp_path / f"pkg-{os.urandom(4).hex()}"
    package.mkdir()
    (package / "predict.py").write_text(textwrap.dedent(code))
    spec = ModelSpec(
        runtime="python",
        entrypoint="predict.py:apply",
        package_dir=package,
        network=network,
        limits=ResourceLimits(**{**SMALL, **limits}),
    )
    return get_runtime("python").prepare(spec, log=lambda _line: None).launch


@contextlib.contextmanager
def running(spec: LaunchSpec, *, sandbox: bool = True):
    process = ModelProcess(spec, sandbox=sandbox)
    process.start(timeout=30)
    try:
        yield process
    finally:
        process.stop()


def assert_a_good_model_still_works(tmp_path, *, sandbox: bool = True) -> None:
    with running(model(tmp_path, GOOD), sandbox=sandbox) as process:
        answer = process.call("json", {"still": "works"}, timeout=10)
    assert answer.ok, answer.error
    assert answer.result == {"still": "works"}


def needs_cgroup(*controllers: str) -> None:
    available = cgroups.cgroup_support().controllers
    missing = [c for c in controllers if c not in available]
    if missing:
        pytest.skip(f"no {'/'.join(missing)} cgroup here: {cgroups.cgroup_support().message}")


class ProcessWatch:
    """Samples the processes of a model's cgroup while a call runs, to check afterwards
    that every one of them is gone and that there were never more than the limit."""

    def __init__(self, process: ModelProcess):
        self.cgroup = process.cgroup
        self.seen: dict[int, float] = {}
        self.most = 0
        self.most_memory = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    def _sample(self):
        while not self._done.is_set() and self.cgroup is not None:
            pids = self.cgroup.pids()
            self.most = max(self.most, len(pids))
            self.most_memory = max(self.most_memory, self.cgroup.memory_usage() or 0)
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    self.seen.setdefault(pid, psutil.Process(pid).create_time())
            time.sleep(0.01)

    def leftovers(self) -> list[int]:
        alive = []
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != "zombie":
                    alive.append(pid)
        return alive


def assert_nothing_left(process: ModelProcess, watch: ProcessWatch | None = None) -> None:
    assert not process.alive
    assert process.tmp_dir is None and process.cgroup is None
    if watch is not None:
        assert watch.seen, "the watch saw no process at all"
        assert watch.leftovers() == []
        assert all(not path.exists() for path in watch.cgroup.paths)


# -- network and secrets ------------------------------------------------------------------


@needs_bwrap
def test_a_model_cannot_reach_the_network_or_the_database(tmp_path, settings):
    port = int(settings.DATABASES["default"].get("PORT") or 5432)
    connects = model(
        tmp_path,
        f"""
        import socket

        def apply(host):
            socket.create_connection((host, {port}), timeout=2)
            return "connected"
        """,
    )
    resolves = model(
        tmp_path,
        """
        import socket

        def apply(data):
            return socket.getaddrinfo("pypi.org", 443)
        """,
    )
    with running(connects) as process:
        # PostgreSQL listens on the host's loopback; the model has a loopback of its own.
        answer = process.call("text", "127.0.0.1", timeout=TIMEOUT)
        assert answer.error["error_type"] == "AlgorithmError"
        assert "Connection refused" in answer.error["message"]
        assert process.alive  # an exception in the model, not a crash
        answer = process.call("text", "192.0.2.1", timeout=TIMEOUT)  # anywhere else
        assert "Network is unreachable" in answer.error["message"]
    with running(resolves) as process:
        answer = process.call("json", None, timeout=TIMEOUT)
        assert not answer.ok
        assert "name resolution" in answer.error["message"].lower()
    assert_a_good_model_still_works(tmp_path)


@needs_bwrap
def test_a_model_with_network_true_reaches_only_what_the_egress_proxy_allows(tmp_path, settings):
    """`network = true` is the public internet through the egress proxy: never this host's
    loopback (nor private ranges), directly or through the proxy, unless the operator
    allows that address."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from the host")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    spec = model(
        tmp_path,
        f"""
        import socket
        import urllib.error
        import urllib.request

        def apply(data):
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
                direct = "connected"
            except OSError as exc:
                direct = type(exc).__name__
            try:
                with urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=5) as answer:
                    proxied = answer.read().decode()
            except urllib.error.HTTPError as exc:
                proxied = exc.code
            return {{"direct": direct, "proxied": proxied}}
        """,
        network=True,
    )
    try:
        settings.OUTBOUND_ALLOWED_NETWORKS = []
        with running(spec) as process:
            refused = process.call("json", None, timeout=10)
            settings.OUTBOUND_ALLOWED_NETWORKS = [f"127.0.0.1:{port}"]
            allowed = process.call("json", None, timeout=10)
    finally:
        server.shutdown()
    assert refused.ok and allowed.ok, (refused.error, allowed.error)
    # The sandbox's own loopback has nothing on that port; the host's is not reachable.
    assert refused.result == {"direct": "ConnectionRefusedError", "proxied": 403}
    assert allowed.result == {"direct": "ConnectionRefusedError", "proxied": "hello from the host"}


@needs_bwrap
def test_a_model_sees_nothing_of_the_platform(tmp_path, settings, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "platform-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://platform:secret@127.0.0.1/db")
    secret = tmp_path / "secret.txt"
    secret.write_text("platform secret")
    database_host = str(settings.DATABASES["default"].get("HOST") or "")
    spec = model(
        tmp_path,
        """
        import os

        def apply(paths):
            return {
                "exists": {path: os.path.exists(path) for path in paths},
                "environ": sorted(os.environ),
                "root": sorted(os.listdir("/root")) if os.path.isdir("/root") else [],
                "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                "uid": os.getuid(),
                "cwd": os.getcwd(),
            }
        """,
    )
    paths = ["/work", str(secret), str(settings.BASE_DIR), "/root/.ssh", "/etc/shadow"]
    if database_host.startswith("/"):
        paths.append(database_host)
    with running(spec) as process:
        answer = process.call("json", paths, timeout=TIMEOUT)
    assert answer.ok, answer.error
    report = answer.result
    assert report["exists"] == dict.fromkeys(paths, False)
    assert not {"SECRET_KEY", "DATABASE_URL"} & set(report["environ"])
    assert "MARKETPLACE_RESULT_FD" in report["environ"]
    # Only what leads to the base Python the environment was made from (it lives in /root
    # on some hosts) is there.
    assert set(report["root"]) <= {".pyenv", ".local", ".cache"}
    # Its own PID namespace: bubblewrap's init and the model, nothing of the host.
    assert len(report["pids"]) <= 3 and os.getpid() not in report["pids"]
    assert report["uid"] == 65534 and report["cwd"] == "/model"


def test_without_the_sandbox_the_environment_is_still_the_platforms_own(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "platform-secret")
    spec = model(tmp_path, "import os\n\ndef apply(data):\n    return sorted(os.environ)\n")
    with running(spec, sandbox=False) as process:
        answer = process.call("json", None, timeout=TIMEOUT)
    assert answer.ok and "SECRET_KEY" not in answer.result


# -- files ----------------------------------------------------------------------------------


@needs_bwrap
def test_writes_outside_tmp_fail_and_tmp_works(tmp_path):
    spec = model(
        tmp_path,
        """
        import os
        import sys

        def apply(data):
            outcome = {}
            for directory in ["/model", sys.prefix, sys.base_prefix, "/usr", "/", "/etc", "/tmp"]:
                path = os.path.join(directory, "hostile.txt")
                try:
                    with open(path, "w") as handle:
                        handle.write("pwned")
                    outcome[directory] = "written"
                except OSError as exc:
                    outcome[directory] = exc.strerror
            return outcome
        """,
    )
    with running(spec) as process:
        answer = process.call("json", None, timeout=TIMEOUT)
        tmp_dir = Path(process.tmp_dir)
        assert (tmp_dir / "hostile.txt").read_text() == "pwned"
    assert answer.ok, answer.error
    outcome = answer.result
    assert outcome.pop("/tmp") == "written"
    assert set(outcome.values()) <= {"Read-only file system", "No such file or directory"}
    assert outcome["/model"] == outcome["/usr"] == outcome["/"] == "Read-only file system"
    assert not (spec.package_dir / "hostile.txt").exists()
    assert not Path("/usr/hostile.txt").exists() and not Path("/hostile.txt").exists()
    assert not any(Path(p, "hostile.txt").exists() for p in spec.read_only_paths)
    assert not tmp_dir.exists()  # the private /tmp went with the process

    raising = model(tmp_path, "def apply(data):\n    open('/model/x', 'w')\n")
    with running(raising) as process:
        answer = process.call("json", None, timeout=TIMEOUT)
    assert answer.error["error_type"] == "AlgorithmError"
    assert "Read-only file system" in answer.error["message"]
    assert_a_good_model_still_works(tmp_path)


@needs_bwrap
def test_each_process_has_its_own_tmp(tmp_path):
    spec = model(
        tmp_path,
        """
        import os

        def apply(token):
            with open(f"/tmp/{token}", "w") as handle:
                handle.write(token)
            return sorted(os.listdir("/tmp"))
        """,
    )
    # Read-only paths under the host's /tmp (the environment, in tests) have their mount
    # points in the private one.
    skeleton = [
        Path(path).relative_to("/tmp").parts[0]
        for path in spec.read_only_paths
        if Path(path).is_relative_to("/tmp")
    ]

    def listing(process, token):
        names = process.call("text", token, timeout=TIMEOUT).result
        return [name for name in names if name not in skeleton]

    with running(spec) as first, running(spec) as second:
        assert listing(first, "one") == ["one"]
        assert listing(second, "two") == ["two"]
        assert listing(first, "three") == ["one", "three"]
        assert first.tmp_dir != second.tmp_dir


@pytest.mark.parametrize("sandbox", [pytest.param(True, marks=needs_bwrap), False])
def test_file_size_is_capped(tmp_path, sandbox):
    spec = model(
        tmp_path,
        """
        import os

        def apply(data):
            with open(os.path.join(os.environ["TMPDIR"], "big"), "wb") as handle:
                handle.write(b"x" * (3 * 1024 * 1024))
            return "written"
        """,
        file_size_bytes=1 * MiB,
    )
    with running(spec, sandbox=sandbox) as process:
        answer = process.call("json", None, timeout=TIMEOUT)
        assert answer.error["error_type"] == "AlgorithmError"
        assert "File too large" in answer.error["message"]
        assert Path(process.tmp_dir, "big").stat().st_size == 1 * MiB
        assert process.alive


# -- processes, memory, time --------------------------------------------------------------


@pytest.mark.parametrize("sandbox", [pytest.param(True, marks=needs_bwrap), False])
def test_a_fork_bomb_is_contained(tmp_path, sandbox):
    needs_cgroup("pids")
    spec = model(
        tmp_path,
        """
        import os

        def apply(data):
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        """,
    )
    with running(spec, sandbox=sandbox) as process, ProcessWatch(process) as watch:
        started = time.monotonic()
        with pytest.raises(ModelTimeout, match="did not answer within 2 seconds") as caught:
            process.call("json", None, timeout=TIMEOUT)
        assert time.monotonic() - started < TIMEOUT + 3
    assert caught.value.error_type == "TimeoutError"
    assert 1 < watch.most <= SMALL["processes"]
    assert_nothing_left(process, watch)
    assert_a_good_model_still_works(tmp_path, sandbox=sandbox)


@needs_bwrap
def test_allocating_without_end_is_stopped_with_a_clear_error(tmp_path):
    needs_cgroup("memory")
    spec = model(
        tmp_path,
        """
        def apply(data):
            blocks = []
            while True:
                blocks.append(b"x" * (16 * 1024 * 1024))
        """,
    )
    with (
        running(spec) as process,
        ProcessWatch(process) as watch,
        pytest.raises(ModelCrashed) as caught,
    ):
        process.call("json", None, timeout=20)
    assert caught.value.message == "the model ran out of memory (limit 256 MiB)"
    assert caught.value.error_type == "AlgorithmError"
    assert_nothing_left(process, watch)
    assert 0 < watch.most_memory <= SMALL["memory_bytes"]
    assert_a_good_model_still_works(tmp_path)


@needs_bwrap
def test_a_forking_allocator_is_stopped_as_a_whole(tmp_path):
    """RLIMIT_DATA is per process: four children of 100 MiB each would pass it. The memory
    cgroup counts them together, and the whole model goes."""
    needs_cgroup("memory")
    spec = model(
        tmp_path,
        """
        import os
        import time

        def apply(data):
            for _ in range(4):
                if os.fork() == 0:
                    block = b"x" * (100 * 1024 * 1024)
                    time.sleep(60)
                    os._exit(0)
            time.sleep(60)
        """,
    )
    with (
        running(spec) as process,
        ProcessWatch(process) as watch,
        pytest.raises(ModelCrashed, match=r"ran out of memory \(limit 256 MiB\)"),
    ):
        process.call("json", None, timeout=20)
    assert_nothing_left(process, watch)
    assert watch.most_memory <= SMALL["memory_bytes"]
    assert_a_good_model_still_works(tmp_path)


def test_without_a_memory_cgroup_allocation_fails_inside_the_model(tmp_path, settings):
    settings.SANDBOX_CGROUPS = "off"
    spec = model(
        tmp_path,
        """
        def apply(data):
            blocks = []
            while True:
                blocks.append(b"x" * (16 * 1024 * 1024))
        """,
    )
    with running(spec, sandbox=False) as process:
        assert process.cgroup is None
        answer = process.call("json", None, timeout=20)
        assert answer.error["message"] == "MemoryError"  # RLIMIT_DATA, per process
        assert process.call("json", None, timeout=20).error["message"] == "MemoryError"


@pytest.mark.parametrize("sandbox", [pytest.param(True, marks=needs_bwrap), False])
def test_sleeping_forever_times_out_and_leaves_nothing_behind(tmp_path, sandbox):
    needs_cgroup("pids")
    marker = str(900000 + os.getpid() % 100000)
    spec = model(
        tmp_path,
        f"""
        import os
        import subprocess
        import time

        def apply(data):
            subprocess.Popen(["sleep", "{marker}"])
            os.system("setsid sleep {marker} &")
            time.sleep(100000)
        """,
    )

    def sleepers():
        found = []
        for process in psutil.process_iter(["cmdline"]):
            if process.info["cmdline"] == ["sleep", marker] and process.status() != "zombie":
                found.append(process.pid)
        return found

    with (
        running(spec, sandbox=sandbox) as process,
        ProcessWatch(process) as watch,
        pytest.raises(ModelTimeout, match="did not answer within 2 seconds") as caught,
    ):
        process.call("json", None, timeout=TIMEOUT)
    assert sleepers() == []
    assert len(watch.seen) >= 3  # the model and both sleeps were seen, and are gone
    assert_nothing_left(process, watch)
    assert isinstance(caught.value.output, str)
    assert_a_good_model_still_works(tmp_path, sandbox=sandbox)


@needs_bwrap
def test_burning_cpu_past_its_limit_kills_the_model(tmp_path):
    spec = model(
        tmp_path,
        """
        def apply(data):
            while True:
                pass
        """,
        cpu_seconds=1,
    )
    with running(spec) as process, pytest.raises(ModelCrashed) as caught:
        process.call("json", None, timeout=20)
    assert caught.value.message == (
        "the model process died from signal SIGXCPU (over its CPU time limit of 1 s)"
    )
    assert_a_good_model_still_works(tmp_path)


# -- dying mid-request ----------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", [pytest.param(True, marks=needs_bwrap), False])
def test_exiting_mid_request(tmp_path, sandbox):
    spec = model(
        tmp_path,
        """
        import os
        import sys

        def apply(data):
            sys.__stderr__.write("about to leave\\n")
            os._exit(3)
        """,
    )
    with running(spec, sandbox=sandbox) as process:
        with pytest.raises(ModelCrashed) as caught:
            process.call("json", None, timeout=TIMEOUT)
        assert caught.value.message == "the model process exited with code 3"
        assert "about to leave" in caught.value.output
        with pytest.raises(ModelCrashed, match="not running"):
            process.call("json", None, timeout=TIMEOUT)
    assert_nothing_left(process)
    assert_a_good_model_still_works(tmp_path, sandbox=sandbox)


@pytest.mark.parametrize("sandbox", [pytest.param(True, marks=needs_bwrap), False])
def test_a_segfault_is_reported_as_such(tmp_path, sandbox):
    spec = model(tmp_path, "import ctypes\n\ndef apply(data):\n    ctypes.string_at(0)\n")
    with running(spec, sandbox=sandbox) as process, pytest.raises(ModelCrashed) as caught:
        process.call("json", None, timeout=TIMEOUT)
    assert caught.value.message == (
        "the model process died from signal SIGSEGV (segmentation fault)"
    )
    assert_a_good_model_still_works(tmp_path, sandbox=sandbox)


@needs_bwrap
def test_a_model_that_fails_to_load_says_why(tmp_path):
    spec = model(tmp_path, "import os\nos._exit(7)\n")
    process = ModelProcess(spec, sandbox=True)
    with pytest.raises(ModelStartError, match="exited with code 7"):
        process.start(timeout=10)
    assert_nothing_left(process)


@needs_bwrap
def test_a_model_error_is_reported_even_when_the_model_shadows_traceback(tmp_path):
    """The shim imports traceback only when a model fails, after the model's folder went
    on sys.path: a traceback.py of the model's own must not turn the error into a crash."""
    spec = model(tmp_path, "def apply(data):\n    raise ValueError('boom')\n")
    (spec.package_dir / "traceback.py").write_text("raise RuntimeError('not the real one')\n")
    with running(spec) as process:
        answer = process.call("json", {}, timeout=10)
        assert answer.error["message"] == "boom"
        assert answer.error["stacktrace"] == "ValueError: boom\n"
        assert process.call("json", {}, timeout=10).error["message"] == "boom"


# -- output ---------------------------------------------------------------------------------


@needs_bwrap
def test_printing_100_mb_neither_blocks_nor_fills_the_host(tmp_path):
    spec = model(
        tmp_path,
        """
        import os

        def apply(data):
            chunk = b"y" * (1024 * 1024)
            for _ in range(50):
                os.write(1, chunk)  # no newline at all
            for _ in range(50):
                os.write(2, b"line\\n" * (1024 * 1024 // 5))
            return "done"
        """,
    )
    ours = psutil.Process()
    with running(spec) as process:
        before = ours.memory_info().rss
        answer = process.call("json", None, timeout=30)
        grown = ours.memory_info().rss - before
        assert answer.ok, answer.error
        assert answer.result == "done"
        assert len(answer.stdout) < 65 * 1024
        assert "output cut" in answer.stdout and "at most 64 KiB" in answer.stdout
        assert grown < 32 * MiB
        again = process.call("json", "quiet", timeout=TIMEOUT)
        assert again.result == "done" and again.ok


@needs_bwrap
def test_an_answer_over_the_limit_is_an_error_and_the_process_lives_on(tmp_path):
    spec = model(
        tmp_path,
        "def apply(size):\n    return 'z' * size\n",
        answer_bytes=1 * MiB,
    )
    with running(spec) as process:
        answer = process.call("json", 2 * MiB, timeout=TIMEOUT)
        assert answer.error == {
            "message": "the model's answer (2.0 MiB) is over the 1 MiB limit",
            "error_type": "AlgorithmError",
        }
        assert process.call("json", 10, timeout=TIMEOUT).result == "z" * 10


@needs_bwrap
def test_output_is_captured_per_request_without_waiting(tmp_path):
    spec = model(
        tmp_path,
        """
        import os
        import sys

        def apply(n):
            print("print", n)
            os.write(1, f"fd-out {n}\\n".encode())
            os.write(2, f"fd-err {n}\\n".encode())
            return n
        """,
    )
    with running(spec) as process:
        for n in range(200):
            answer = process.call("json", n, timeout=TIMEOUT)
            assert answer.result == n
            assert sorted(answer.stdout.splitlines()) == [
                f"fd-err {n}",
                f"fd-out {n}",
                f"print {n}",
            ]


def test_a_model_that_does_not_read_its_input_cannot_hold_the_caller(tmp_path):
    """A request bigger than the pipe to a model that never reads: the write itself must
    obey the timeout."""
    package = tmp_path / "deaf"
    package.mkdir()
    spec = get_runtime("command").prepare(
        ModelSpec(runtime="command", entrypoint=["sleep", "1000"], package_dir=package),
        log=lambda _line: None,
    )
    with running(spec.launch, sandbox=False) as process:
        started = time.monotonic()
        with pytest.raises(ModelTimeout):
            process.call("text", "x" * (4 * MiB), timeout=1)
        assert time.monotonic() - started < 3


# -- cgroups and status ---------------------------------------------------------------------


def test_limits_go_into_the_model_cgroup(tmp_path):
    needs_cgroup("pids", "memory")
    spec = model(tmp_path, GOOD, processes=17, memory_bytes=300 * MiB, cpus=0.5)
    with running(spec) as process:
        group = process.cgroup
        assert process.pid in group.pids()
        assert 0 < group.memory_usage() < 300 * MiB
        for path in group.paths:
            assert path.parent.name == "marketplace"
            if (path / "cpu.cfs_quota_us").exists():
                assert (path / "cpu.cfs_quota_us").read_text().strip() == "50000"
            if (path / "cpu.max").exists():
                assert (path / "cpu.max").read_text().split() == ["50000", "100000"]
            if (path / "pids.max").exists():
                assert (path / "pids.max").read_text().strip() == "17"
            for name in ("memory.limit_in_bytes", "memory.max"):
                if (path / name).exists():
                    assert (path / name).read_text().strip() == str(300 * MiB)
        paths = group.paths
    assert not any(path.exists() for path in paths)


def test_cgroups_left_by_a_dead_platform_process_are_cleaned_up():
    """A platform process that died without stopping its models (killed, crashed) leaves
    their cgroups, and models started without bubblewrap running in them."""
    needs_cgroup("pids")
    hierarchy = next(h for h in cgroups.cgroup_support().hierarchies if "pids" in h.controllers)
    cgroups._make_base(hierarchy)
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    name = f"{cgroups._pid_namespace()}-{dead}-{os.urandom(6).hex()}"
    left = cgroups.ModelCgroup.create_in((hierarchy,), name=name)
    orphan = subprocess.Popen(["sleep", "600"], preexec_fn=left.enter)
    try:
        assert left.pids() == {orphan.pid}
        assert cgroups.remove_stale_cgroups(hierarchy) >= 1
        assert orphan.wait(timeout=5) == -9
        assert not (hierarchy.base / name).exists()
    finally:
        orphan.kill()
        left.remove()


def test_cgroups_degrade_to_rlimits_when_they_cannot_be_written(tmp_path, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cgroups.os, "mkdir", refuse)
    degraded = cgroups._probe.__wrapped__("")
    assert not degraded.enabled
    assert "Permission denied" in degraded.message
    assert "the process count and the total memory of a model is not capped" in degraded.message
    monkeypatch.undo()

    monkeypatch.setattr(cgroups, "_probe", lambda parent: degraded)
    status = sandbox_status()
    assert status.cgroups is False and "not capped" in status.message
    with running(model(tmp_path, GOOD), sandbox=False) as process:
        assert process.cgroup is None
        assert process.call("json", [1], timeout=TIMEOUT).result == [1]


def test_required_cgroups_refuse_to_start_without_them(tmp_path, settings, monkeypatch):
    settings.SANDBOX_CGROUPS = "required"
    monkeypatch.setattr(
        cgroups, "_probe", lambda parent: cgroups.CgroupSupport((), "no cgroup here")
    )
    with pytest.raises(ModelStartError, match="SANDBOX_CGROUPS=required but no cgroup here"):
        ModelProcess(model(tmp_path, GOOD), sandbox=False).start()


@needs_bwrap
def test_the_status_names_the_sandbox_and_its_cgroups():
    status = sandbox_status()
    assert status.enabled and status.engine.startswith("bubblewrap")
    if {"pids", "memory"} <= set(cgroups.cgroup_support().controllers):
        assert status.cgroups and "cgroup" in status.engine


HYBRID_CGROUP = """\
12:pids:/
4:memory:/session/abc
1:cpu,cpuacct:/
0::/
"""
HYBRID_MOUNTS = """\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_controllers_are_found_on_a_hybrid_host():
    found = cgroups.locate_controllers(HYBRID_CGROUP, HYBRID_MOUNTS)
    assert found == {
        "pids": (1, Path("/sys/fs/cgroup/pids")),
        "memory": (1, Path("/sys/fs/cgroup/memory/session/abc")),
        "cpu": (1, Path("/sys/fs/cgroup/cpu,cpuacct")),
    }
    parent = cgroups.locate_controllers(HYBRID_CGROUP, HYBRID_MOUNTS, parent="/models")
    assert parent["memory"] == (1, Path("/sys/fs/cgroup/memory/models"))


def test_controllers_are_found_on_a_cgroup2_host(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    mounts = f"29 23 0:26 / {tmp_path} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    found = cgroups.locate_controllers("0::/system.slice/marketplace.service\n", mounts)
    expected = tmp_path / "system.slice/marketplace.service"
    assert found == {"pids": (2, expected), "memory": (2, expected), "cpu": (2, expected)}
    # In a container whose cgroup namespace starts at its own cgroup:
    assert cgroups.locate_controllers("0::/\n", mounts)["pids"] == (2, tmp_path)
