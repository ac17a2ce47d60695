"""Hostile models, end to end through POST /v1/algo on the local backend: a real runner
service with warm processes in the bubblewrap sandbox (tests/execution/test_sandbox.py
covers the process layer alone).

Whatever a model tries (the network, the platform's files and secrets, writing outside its
/tmp, forking or allocating without end, spinning, sleeping, killing its parent, flooding its
output), the caller gets a clear answer (the model's error in a 200 envelope, or 504), exactly
one usage record is written for the call, the platform stays healthy and the next call of a
good model works. Limits and timeouts are small so that the module stays fast."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from billing.models import UsageRecord
from catalog import services as catalog_services
from execution import cgroups
from execution.sandbox import _probe_bubblewrap
from gateway.models import Invocation
from tests.conftest import assert_error_shape
from tests.gateway.conftest import (  # noqa: F401 (fixtures)
    TOOLBOX_MODEL,
    key_client,
    owner,
    publish,
    runner,
    storage,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not _probe_bubblewrap()[0],
        reason=f"the sandbox needs bubblewrap ({_probe_bubblewrap()[1]}); CI installs it",
    ),
]

MiB = 1024 * 1024

HOSTILE_MODEL = {
    "model.toml": """
name = "hostile"
title = "Hostile"
tagline = "Tries everything a model should not be able to do"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
[io]
sample_input = {attack = "none"}
""",
    "predict.py": """
import os
import signal
import socket
import sys
import time


def connect(target):
    family = socket.AF_UNIX if isinstance(target, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(1)
    try:
        sock.connect(target if isinstance(target, str) else tuple(target))
        return "connected"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()


def read(path):
    try:
        if os.path.isdir(path):
            return "listed: " + ", ".join(os.listdir(path))
        with open(path, "rb") as f:
            return "read: " + f.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        return type(exc).__name__


def write(path):
    try:
        with open(path, "w") as f:
            f.write("owned")
        return "written"
    except OSError as exc:
        return type(exc).__name__


def apply(data):
    attack = data.get("attack")
    if attack == "network":
        return {str(target): connect(target) for target in data["targets"]}
    if attack == "read":
        found = {path: read(path) for path in data["paths"]}
        found["environ"] = dict(os.environ)
        found["proc"] = {pid: read(f"/proc/{pid}/environ") for pid in os.listdir("/proc")
                         if pid.isdigit()}
        return found
    if attack == "write":
        return {path: write(path) for path in data["paths"]}
    if attack == "fork_bomb":
        while True:
            try:
                os.fork()
            except OSError:
                pass
    if attack == "memory":
        blocks = []
        while True:
            blocks.append(b"x" * (16 * 1024 * 1024))
    if attack == "spin":
        while True:
            pass
    if attack == "sleep":
        time.sleep(600)
    if attack == "kill_parent":
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(0.5)
        return {"survived": True, "parent": os.getppid()}
    if attack == "kill_everything":
        for pid in (1, -1):  # the sandbox's init, then everything else it can see
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os.killpg(0, signal.SIGKILL)  # its own process group: itself included
        time.sleep(5)
        return {"survived": True}
    if attack == "flood":
        chunk = "x" * (1024 * 1024) + "\\n"
        for _ in range(data["mib"]):
            sys.stdout.write(chunk)
            sys.stderr.write(chunk)
        return {"flooded": data["mib"]}
    return {"ok": True}
""",
}


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.SANDBOX_MEMORY_BYTES = 256 * MiB
    settings.SANDBOX_PROCESSES = 32
    settings.SANDBOX_FILE_SIZE_BYTES = 16 * MiB
    settings.SECRET_KEY = f"platform-secret-{uuid.uuid4().hex}"
    os.environ["DATABASE_URL_FOR_HOSTILE_TEST"] = settings.SECRET_KEY
    yield settings
    os.environ.pop("DATABASE_URL_FOR_HOSTILE_TEST", None)


@pytest.fixture
def platform(owner, storage, runner):  # noqa: F811
    """The owner's good model (toolbox) and the hostile one, both published."""
    good = publish(owner, TOOLBOX_MODEL)
    hostile = publish(owner, HOSTILE_MODEL)
    return {"good": good, "hostile": hostile, "client": key_client(owner)}


def attack(platform, data: dict, *, timeout: float = 5):
    response = platform["client"].post(
        f"/v1/algo/ada/hostile?timeout={timeout:g}", data, format="json"
    )
    request_id = response.json().get("request_id")
    assert request_id, response.content
    assert UsageRecord.objects.filter(request_id=request_id).count() == 1
    assert Invocation.objects.filter(pk=request_id).count() == 1
    return response


def assert_the_platform_carries_on(platform) -> None:
    client = platform["client"]
    health = client.get("/healthz")
    assert health.status_code == 200, health.content
    good = client.post("/v1/algo/ada/toolbox", {"text": "still here"}, format="json")
    assert good.status_code == 200, good.content
    assert good.json()["result"] == {"echo": {"text": "still here"}}
    again = client.post("/v1/algo/ada/hostile", {"attack": "none"}, format="json")
    assert again.status_code == 200 and again.json()["result"] == {"ok": True}, again.content


def model_error(response) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert "result" not in body, body
    assert body["error"]["message"] and body["error"]["error_type"] == "AlgorithmError"
    return body["error"]


def needs_cgroup(*controllers: str) -> None:
    available = cgroups.cgroup_support().controllers
    missing = [c for c in controllers if c not in available]
    if missing:
        pytest.skip(f"no {'/'.join(missing)} cgroup here: {cgroups.cgroup_support().message}")


def test_a_model_reaches_neither_the_network_nor_the_platform_nor_its_secrets(platform, settings):
    database = settings.DATABASES["default"]
    port = int(database.get("PORT") or 5432)
    host = str(database.get("HOST") or database.get("OPTIONS", {}).get("host") or "")
    targets = [["127.0.0.1", port], ["127.0.0.1", 6379], ["192.0.2.1", 80], ["1.1.1.1", 53]]
    if host.startswith("/"):
        targets.append(f"{host}/.s.PGSQL.{port}")
    answer = attack(platform, {"attack": "network", "targets": targets})
    assert answer.status_code == 200, answer.content
    outcomes = answer.json()["result"]
    assert len(outcomes) == len(targets)
    assert not [t for t, outcome in outcomes.items() if outcome == "connected"], outcomes

    good_package = catalog_services.package_dir(platform["good"].build)
    base = Path(settings.BASE_DIR)
    paths = [
        str(base / "marketplace" / "settings.py"),
        str(base / ".env"),
        str(base),
        str(good_package / "predict.py"),
        str(good_package.parent),
        str(Path(settings.VAR_DIR)),
        f"/proc/{os.getpid()}/environ",
        f"/proc/{os.getpid()}/cmdline",
        "/etc/shadow",
        "/root",
        "/work",
    ]
    if host.startswith("/"):
        paths.append(host)
    answer = attack(platform, {"attack": "read", "paths": paths})
    assert answer.status_code == 200, answer.content
    seen = answer.json()["result"]
    # Folders exist only as the skeleton leading to what the sandbox mounts read-only (the
    # model's environment under VAR_DIR, the base Python): nothing else is in them.
    skeleton = {
        part
        for path in (sys.base_prefix, Path(settings.VAR_DIR) / "envs")
        for part in Path(path).parts
    }
    leaked = {
        path: seen[path]
        for path in paths
        if seen[path].startswith("read")
        or (
            seen[path].startswith("listed")
            and not set(seen[path].removeprefix("listed: ").split(", ")) <= skeleton
        )
    }
    assert not leaked, leaked
    everything = str(seen)
    assert settings.SECRET_KEY not in everything
    database_password = settings.DATABASES["default"].get("PASSWORD")
    assert not database_password or database_password not in everything
    assert "DATABASE_URL" not in seen["environ"] and "SECRET_KEY" not in seen["environ"]
    assert "print(" not in everything  # the good model's code

    targets = ["/model/pwned", "/etc/pwned", "/usr/pwned", "/pwned", str(base / "pwned")]
    targets += [str(good_package / "pwned"), str(Path(settings.MEDIA_ROOT) / "pwned"), "/tmp/ok"]
    answer = attack(platform, {"attack": "write", "paths": targets})
    written = answer.json()["result"]
    assert written.pop("/tmp/ok") == "written"
    assert "written" not in written.values(), written
    for path in targets[:-1]:
        assert not os.path.exists(path), path
    assert_the_platform_carries_on(platform)


def test_a_fork_bomb_times_out_and_the_platform_carries_on(platform):
    needs_cgroup("pids")
    answer = attack(platform, {"attack": "fork_bomb"}, timeout=3)
    error = assert_error_shape(answer, 504, "TimeoutError")
    assert "3 seconds" in error["message"]
    assert Invocation.objects.get(pk=answer.json()["request_id"]).status == "timeout"
    assert_the_platform_carries_on(platform)


def test_a_memory_hog_is_stopped_with_a_clear_error(platform):
    needs_cgroup("memory")
    answer = attack(platform, {"attack": "memory"}, timeout=20)
    error = model_error(answer)
    assert "ran out of memory (limit 256 MiB)" in error["message"]
    record = UsageRecord.objects.get(request_id=answer.json()["request_id"])
    assert record.status == "failed"
    assert_the_platform_carries_on(platform)


@pytest.mark.parametrize("what", ["spin", "sleep"])
def test_spinning_or_sleeping_past_the_timeout_is_a_504(platform, what):
    answer = attack(platform, {"attack": what}, timeout=1)
    assert_error_shape(answer, 504, "TimeoutError")
    invocation = Invocation.objects.get(pk=answer.json()["request_id"])
    assert invocation.status == "timeout"
    assert UsageRecord.objects.get(request_id=invocation.pk).status == "timeout"
    assert_the_platform_carries_on(platform)


def test_killing_its_parent_or_everything_it_sees_hurts_only_itself(platform):
    answer = attack(platform, {"attack": "kill_parent"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    # In its own PID namespace its parent is the sandbox's init, which a signal from inside
    # cannot kill; if it ever could, the model would just crash.
    assert body.get("result", {}).get("survived") or body["error"]["message"]
    answer = attack(platform, {"attack": "kill_everything"})
    error = model_error(answer)
    assert error["message"].startswith("the model process died from signal SIGKILL"), error
    assert_the_platform_carries_on(platform)


def test_a_model_flooding_its_output_is_answered_with_a_bounded_capture(platform):
    response = platform["client"].post(
        "/v1/algo/ada/hostile?timeout=20&stdout=true", {"attack": "flood", "mib": 20}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["result"] == {"flooded": 20}
    assert UsageRecord.objects.filter(request_id=body["request_id"]).count() == 1
    stdout = body["metadata"]["stdout"]
    assert stdout.startswith("x" * 1000) and 32 * 1024 < len(stdout) <= 128 * 1024
    assert_the_platform_carries_on(platform)


def test_a_caller_nesting_json_without_end_gets_a_400(platform):
    body = "[" * 100_000 + "]" * 100_000
    response = platform["client"].generic(
        "POST", "/v1/algo/ada/toolbox", body, content_type="application/json"
    )
    assert_error_shape(response, 400, "InputError")
    assert_the_platform_carries_on(platform)
