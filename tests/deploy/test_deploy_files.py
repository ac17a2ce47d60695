"""The deployment files (Dockerfile, .dockerignore, deploy/docker-entrypoint.sh, compose.yaml,
deploy/kubernetes/) checked without Docker, Compose or a cluster, none of which is here:

- every Kubernetes manifest validates strictly against the API's schemas (kubernetes-validate),
  and refers only to things that exist (ConfigMap, Secret, claim, volumes, ports, labels);
- compose.yaml validates against the Compose Specification's JSON schema and runs every role
  from one image, in order, with the volumes each role needs;
- every environment variable these files set is one the platform reads, and README.md lists
  every variable marketplace/settings.py reads;
- the Dockerfile copies only what exists and what .dockerignore lets through, and that context
  passes Django's checks;
- the entrypoint is valid sh and, run with stand-in programs, starts each role as expected.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError as KubernetesValidationError

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "compose.yaml"
# The Compose Specification's schema, as the check-jsonschema package (a dev dependency)
# ships it: no download at test time.
COMPOSE_SCHEMA = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"

# The oldest release still commonly run, and the first with user namespaces on by default.
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
ROLES = {"web", "worker", "beat", "runner", "migrate"}
IMAGE_USER = 10001
SOCKET_DIR = "/var/lib/marketplace/run"
# Variables no configuration reads but the process environment always has.
STANDARD_VARIABLES = {"PATH", "HOME", "TMPDIR"}
# Read by the image's Python and by uv (which builds model environments), not by settings.
PYTHON_RUNTIME_VARIABLES = {
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "DJANGO_SETTINGS_MODULE",
    "UV_LINK_MODE",
}
# settings.py reads it, but pytest-xdist sets it: not something to configure.
NOT_CONFIGURATION = {"PYTEST_XDIST_WORKER"}
# gunicorn reads these from the environment itself (checked against its source below).
GUNICORN_VARIABLES = {"WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"}


# -- what the platform reads --------------------------------------------------------------------

_ENV_READERS = {"env", "env_bool", "env_int", "env_list", "_env_decimal"}


def _env_names_read(path: Path, readers: set[str]) -> set[str]:
    """Names passed as a literal to an environment read in one module: settings' own helpers,
    os.environ.get / os.getenv / os.environ[...] / os.environ.setdefault."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            callee = ast.unparse(node.func)
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and (
                    callee in readers
                    or callee in {"os.environ.get", "os.getenv", "os.environ.setdefault"}
                )
            ):
                names.add(first.value)
        elif (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names


@functools.cache
def settings_variables() -> set[str]:
    return _env_names_read(ROOT / "marketplace" / "settings.py", _ENV_READERS)


@functools.cache
def product_variables() -> set[str]:
    """Every variable the platform's own code reads (gunicorn_conf, run_platform, metrics...),
    leaving out the model shims and the snippets, which run elsewhere."""
    names = set()
    for package in ("marketplace", "catalog", "billing", "gateway", "monitoring", "execution"):
        for path in (ROOT / package).rglob("*.py"):
            parts = set(path.relative_to(ROOT).parts)
            if parts & {"shims", "languages", "generators", "migrations"}:
                continue
            names |= _env_names_read(path, _ENV_READERS)
    return names


@functools.cache
def entrypoint_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", ENTRYPOINT.read_text()))


@functools.cache
def entrypoint_roles() -> set[str]:
    """The roles the entrypoint's `case "$role"` handles (patterns indented one level)."""
    text = ENTRYPOINT.read_text()
    body = text[text.index('case "$role" in') :]
    return set(re.findall(r"^    ([a-z]+)\)$", body, flags=re.MULTILINE))


@functools.cache
def variables_the_platform_reads() -> set[str]:
    return settings_variables() | product_variables() | entrypoint_variables() | GUNICORN_VARIABLES


def test_gunicorn_reads_the_variables_we_rely_on():
    import gunicorn.config

    source = inspect.getsource(gunicorn.config)
    for name in GUNICORN_VARIABLES:
        assert f'"{name}"' in source or f"'{name}'" in source, name


def test_settings_variables_are_found():
    found = settings_variables()
    # The reader must see the knobs of every kind of helper, or the checks below prove nothing.
    assert {"DATABASE_URL", "DEBUG", "ALLOWED_HOSTS", "RUNNER_MAX_PROCESSES"} <= found
    assert {"BILLING_SECONDS_INCREMENT", "PUBLIC_URL", "PORT"} <= found


# -- README -------------------------------------------------------------------------------------


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _documented_variables(section: str) -> set[str]:
    """Names in the first column of the section's tables (`A` / `B` rows included)."""
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_readme_lists_every_variable_settings_read():
    documented = _documented_variables(_section("Configuration"))
    missing = settings_variables() - NOT_CONFIGURATION - documented
    assert not missing, f"README.md's Configuration table lacks {sorted(missing)}"
    stale = documented - variables_the_platform_reads()
    assert not stale, f"README.md documents variables nothing reads: {sorted(stale)}"


def test_readme_lists_the_entrypoint_variables():
    section = _section("Deploying")
    documented = _documented_variables(section)
    own = entrypoint_variables() - settings_variables() - STANDARD_VARIABLES
    assert own, "the entrypoint reads variables of its own"
    assert own - GUNICORN_VARIABLES <= documented, sorted(own - documented)
    assert documented <= variables_the_platform_reads(), sorted(
        documented - variables_the_platform_reads()
    )
    for role in ROLES:
        assert f"| `{role}` |" in section, role


# -- Dockerfile and build context ---------------------------------------------------------------


@functools.cache
def dockerfile_instructions() -> list[tuple[int, str, str]]:
    """(stage index, INSTRUCTION, arguments) with continuations joined and comments dropped."""
    logical, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    instructions, stage = [], -1
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append((stage, keyword, arguments.strip()))
    return instructions


def _copy_sources(arguments: str) -> tuple[list[str], dict[str, str]]:
    words = shlex.split(arguments)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return words[:-1], flags


def runtime_env() -> dict[str, str]:
    """ENV of the final stage, in order."""
    instructions = dockerfile_instructions()
    last = instructions[-1][0]
    env = {}
    for stage, keyword, arguments in instructions:
        if stage == last and keyword == "ENV":
            for word in shlex.split(arguments):
                key, _, value = word.partition("=")
                env[key] = value
    return env


class DockerIgnore:
    """.dockerignore as Docker reads it: patterns in order, the last match wins, `!`
    re-includes, and a pattern that matches a directory matches everything below it."""

    def __init__(self, text: str):
        self.rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((negate, pattern, re.compile(self._regex(pattern))))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return out

    def excluded(self, path: str) -> bool:
        parts = path.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for negate, _pattern, regex in self.rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                result = not negate
        return result


def dockerignore() -> DockerIgnore:
    return DockerIgnore((ROOT / ".dockerignore").read_text())


def _files_under(path: Path):
    if path.is_file():
        yield path
        return
    for item in sorted(path.rglob("*")):
        if item.is_file() and "__pycache__" not in item.parts and item.suffix != ".pyc":
            yield item


def context_files(ignore: DockerIgnore) -> list[str]:
    """The files `docker build .` would send, relative to the repository."""
    sent = []
    for folder, dirs, files in os.walk(ROOT):
        base = Path(folder).relative_to(ROOT).as_posix()
        base = "" if base == "." else base + "/"
        # A directory the rules exclude is skipped whole unless a later `!` rule reaches in.
        dirs[:] = [
            d
            for d in sorted(dirs)
            if not ignore.excluded(base + d)
            or any(negate and text.startswith(base + d + "/") for negate, text, _ in ignore.rules)
        ]
        sent += [base + f for f in sorted(files) if not ignore.excluded(base + f)]
    return sent


def test_dockerignore_matches_as_docker_does():
    rules = DockerIgnore("*\n!keep/\n**/__pycache__\n!docs/*.md\n")
    assert rules.excluded("anything")
    assert rules.excluded("dir/below/file.py")
    assert not rules.excluded("keep/a/b.py")
    assert rules.excluded("keep/a/__pycache__/b.pyc")
    assert not rules.excluded("docs/readme.md")
    assert rules.excluded("docs/sub/readme.md")


def test_every_copy_source_exists_and_reaches_the_builder():
    ignore = dockerignore()
    stages = [args for _s, keyword, args in dockerfile_instructions() if keyword == "FROM"]
    stage_names = {args.split()[-1] for args in stages if " AS " in args.upper()}
    copied = []
    for _stage, keyword, arguments in dockerfile_instructions():
        if keyword not in {"COPY", "ADD"}:
            continue
        assert keyword == "COPY", "ADD fetches and unpacks; COPY says what it does"
        sources, flags = _copy_sources(arguments)
        if "from" in flags:
            assert flags["from"] in stage_names, arguments
            continue
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: no such file in the repository"
            for item in _files_under(path):
                relative = item.relative_to(ROOT).as_posix()
                assert not ignore.excluded(relative), f"{relative} is cut by .dockerignore"
            copied.append(source)
    assert {
        "manage.py",
        "marketplace",
        "templates",
        "static",
        "deploy/docker-entrypoint.sh",
    } <= set(copied)
    # Packaged data the platform reads at run time travels with the source.
    for needed in (
        "execution/shims/python_shim.py",
        "templates/base.html",
        "catalog/demo/models/sentiment/model.toml",
    ):
        assert (ROOT / needed).exists(), needed
        assert not ignore.excluded(needed), needed
    # ...and what has no business in an image stays out of the context.
    for heavy in (".venv/bin/python", ".git/HEAD", "var/postgres/PG_VERSION", "tests/conftest.py"):
        assert ignore.excluded(heavy), heavy


def test_dockerfile_builds_a_non_root_multi_stage_image_with_the_sandbox():
    instructions = dockerfile_instructions()
    text = DOCKERFILE.read_text()
    froms = [args for _s, keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, flags=re.MULTILINE)
    assert all(args.startswith("${PYTHON_IMAGE}") for args in froms)
    last = instructions[-1][0]
    final = [(keyword, args) for stage, keyword, args in instructions if stage == last]
    runs = " ".join(args for keyword, args in final if keyword == "RUN")
    for package in ("bubblewrap", "nodejs", "tini"):
        assert re.search(rf"apt-get install[^&]*\b{package}\b", runs), package
    assert "manage.py collectstatic --noinput" in runs
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] == str(IMAGE_USER)
    healthcheck = next(args for keyword, args in final if keyword == "HEALTHCHECK")
    assert healthcheck.endswith('CMD ["docker-entrypoint.sh", "healthcheck"]')
    entrypoint = json.loads(next(args for keyword, args in final if keyword == "ENTRYPOINT"))
    assert entrypoint[-1] == "docker-entrypoint.sh"
    assert json.loads(next(args for keyword, args in final if keyword == "CMD"))[0] in ROLES
    # The entrypoint lands on PATH, where HEALTHCHECK and the probes call it by name.
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert "deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" in copies


def test_dockerfile_sets_only_variables_something_reads():
    env = runtime_env()
    unknown = (
        set(env) - variables_the_platform_reads() - PYTHON_RUNTIME_VARIABLES - STANDARD_VARIABLES
    )
    assert not unknown, sorted(unknown)
    assert env["MARKETPLACE_ENV"] == "production"
    assert env["MEDIA_ROOT"].startswith(env["MARKETPLACE_VAR_DIR"] + "/")


@pytest.mark.slow
def test_the_build_context_passes_django_checks(tmp_path):
    """What .dockerignore sends, laid out as the Dockerfile's final stage lays it out in /app,
    with the image's environment: Django's system checks pass, every template compiles and
    static files are found, all from that copy and not from the checkout."""
    app = tmp_path / "app"
    sent = context_files(dockerignore())
    assert "manage.py" in sent and not any(p.startswith((".venv/", "var/", ".git/")) for p in sent)
    instructions = dockerfile_instructions()
    workdir = None
    for stage, keyword, arguments in instructions:
        if stage != instructions[-1][0]:
            continue
        if keyword == "WORKDIR":
            workdir = arguments
        if keyword != "COPY" or "--from" in arguments:
            continue
        sources, _flags = _copy_sources(arguments)
        destination = shlex.split(arguments)[-1]
        if not destination.startswith(("./", "/app")) or workdir != "/app":
            continue  # the entrypoint, outside the application directory
        for source in sources:
            below = [p for p in sent if p == source or p.startswith(source + "/")]
            assert below, f"COPY {source}: nothing of it is in the context"
            for relative in below:
                inside = relative[len(source) :].lstrip("/") or Path(source).name
                target = app / destination.removeprefix("/app").lstrip("./") / inside
                if destination == "./":
                    target = app / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / relative, target)
    assert (app / "manage.py").is_file() and (app / "marketplace" / "settings.py").is_file()
    var = tmp_path / "var"
    env = {
        **runtime_env(),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(app),
        "MARKETPLACE_VAR_DIR": str(var),
        "MEDIA_ROOT": str(var / "media"),
        "HOME": str(tmp_path),
        # What the Dockerfile gives collectstatic: production insists, nothing connects.
        "DATABASE_URL": "postgresql://build@localhost/unused",
        "SECRET_KEY": "build-context-check-not-a-secret",
    }
    script = """
import pathlib, sys
import django
django.setup()
from django.core.management import call_command
call_command("check", fail_level="WARNING")
import marketplace
from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import get_template
app = pathlib.Path(sys.argv[1])
assert pathlib.Path(marketplace.__file__).is_relative_to(app), marketplace.__file__
assert settings.BASE_DIR == app, settings.BASE_DIR
names = []
for folder in [app / "templates", *app.glob("*/templates"), *app.glob("*/*/templates")]:
    names += [p.relative_to(folder).as_posix() for p in folder.rglob("*.html")]
for name in names:
    get_template(name)
for path in ["css/site.css", "rest_framework/css/default.css"]:
    found = finders.find(path)
    assert found, path
print(len(names))
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(app)],
        cwd=app,
        env={**env, "DJANGO_SETTINGS_MODULE": "marketplace.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.split()[-1]) > 20


# -- the entrypoint -----------------------------------------------------------------------------


def test_entrypoint_is_valid_sh():
    result = subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")


def test_entrypoint_handles_every_role():
    assert ROLES | {"healthcheck"} <= entrypoint_roles()


STUB = """#!/bin/sh
{ printf '%s\\036' "$(basename "$0")" "$@"; printf '\\n'; } >>"$STUB_LOG"
case "$(basename "$0") $*" in
  *"$STUB_FAIL"*) [ -n "$STUB_FAIL" ] && exit 3 ;;
esac
exit 0
"""


@pytest.fixture
def run_entrypoint(tmp_path):
    """Runs the real entrypoint with stand-ins for gunicorn, celery and python that record
    their argv; returns (completed process, [argv, ...])."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for program in ("gunicorn", "celery", "python"):
        (stubs / program).write_text(STUB)
        (stubs / program).chmod(0o755)
    log = tmp_path / "calls.log"

    def run(*args: str, **env: str):
        log.write_text("")
        result = subprocess.run(
            ["sh", str(ENTRYPOINT), *args],
            env={
                "PATH": f"{stubs}:/usr/bin:/bin",
                "APP_DIR": str(tmp_path),
                "TMPDIR": str(tmp_path),
                "STUB_LOG": str(log),
                "STUB_FAIL": "",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=30,
        )
        calls = [line.split("\x1e")[:-1] for line in log.read_text().split("\n") if line]
        return result, calls

    run.tmp_path = tmp_path
    return run


def test_web_role_starts_gunicorn_with_the_platforms_config(run_entrypoint):
    metrics = run_entrypoint.tmp_path / "prometheus"
    metrics.mkdir()
    (metrics / "counter_123.db").write_text("stale")
    result, calls = run_entrypoint("web", "--log-level", "debug", PORT="9001")
    assert result.returncode == 0, result.stderr
    assert calls == [
        [
            "gunicorn",
            "marketplace.wsgi:application",
            "--config",
            "python:marketplace.core.gunicorn_conf",
            "--bind",
            "0.0.0.0:9001",
            "--log-level",
            "debug",
        ]
    ]
    assert metrics.is_dir() and not list(metrics.iterdir()), "metrics of a past run are gone"
    assert (run_entrypoint.tmp_path / "marketplace-role").read_text() == "web\n"
    from gateway.calls import MAX_TIMEOUT_SECONDS
    from marketplace.core import gunicorn_conf  # the module gunicorn is given

    # Every way of starting gunicorn gets a worker timeout above the longest call and above
    # a slow boot from this one module, not from flags each starter must repeat.
    assert gunicorn_conf.timeout > MAX_TIMEOUT_SECONDS


def test_worker_role_serves_the_queues_run_platform_serves(run_entrypoint):
    from marketplace.core.management.commands.run_platform import Command

    result, calls = run_entrypoint("worker")
    assert result.returncode == 0, result.stderr
    assert calls == [
        [
            "celery",
            "-A",
            "marketplace",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--hostname",
            "worker@%h",
            "--queues",
            # One worker role serves what run_platform splits between its prefork worker and
            # its threads-pool calls worker (WORKER_QUEUES splits them in a deployment).
            ",".join(Command._worker_queues() + Command._calls_queues()),
        ]
    ]
    _, calls = run_entrypoint("worker", WORKER_QUEUES="hw-gpu", WORKER_CONCURRENCY="8")
    argv = calls[0]
    assert argv[argv.index("--queues") + 1] == "hw-gpu"
    assert argv[argv.index("--concurrency") + 1] == "8"


def test_beat_and_runner_roles(run_entrypoint):
    _, calls = run_entrypoint("beat")
    tmp = run_entrypoint.tmp_path
    assert calls == [
        [
            "celery",
            "-A",
            "marketplace",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            f"{tmp}/celerybeat-schedule",
        ]
    ]
    _, calls = run_entrypoint("runner")
    assert calls == [["python", "manage.py", "run_runner"]]


def test_migrate_role(run_entrypoint):
    result, calls = run_entrypoint("migrate")
    assert result.returncode == 0, result.stderr
    assert calls == [["python", "manage.py", "migrate", "--noinput"]]

    result, calls = run_entrypoint(
        "migrate", SETUP_DEMO="true", ELASTICSEARCH_URL="http://127.0.0.1:9"
    )
    assert result.returncode == 0, result.stderr
    assert calls == [
        ["python", "manage.py", "migrate", "--noinput"],
        ["python", "manage.py", "setup_demo"],
        ["python", "manage.py", "search_reindex"],
    ]

    # Elasticsearch down: a warning, not a failed deployment.
    result, calls = run_entrypoint(
        "migrate", ELASTICSEARCH_URL="http://127.0.0.1:9", STUB_FAIL="search_reindex"
    )
    assert result.returncode == 0
    assert "search_reindex failed" in result.stderr

    # A failed migration fails the role, and nothing runs after it.
    result, calls = run_entrypoint("migrate", SETUP_DEMO="true", STUB_FAIL="migrate")
    assert result.returncode != 0
    assert calls == [["python", "manage.py", "migrate", "--noinput"]]


def test_any_other_command_is_executed(run_entrypoint):
    result, _ = run_entrypoint("sh", "-c", 'echo "ran $0 $1"', "a", "b")
    assert result.returncode == 0
    assert result.stdout == "ran a b\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_web_healthcheck_asks_healthz_over_http(tmp_path):
    """The real check (python, HTTP) against a real server on loopback."""
    docroot = tmp_path / "www"
    docroot.mkdir()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=docroot,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the test server did not start"
                time.sleep(0.05)
        (tmp_path / "marketplace-role").write_text("web\n")
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "APP_DIR": str(tmp_path),
            "TMPDIR": str(tmp_path),
            "PORT": str(port),
        }

        def healthcheck():
            return subprocess.run(
                ["sh", str(ENTRYPOINT), "healthcheck"],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            )

        failing = healthcheck()
        assert failing.returncode != 0
        assert "/healthz answered 404" in failing.stderr
        (docroot / "healthz").write_text('{"status": "ok"}')
        assert healthcheck().returncode == 0
        # A container whose role has no check of its own (beat, one-off commands) passes.
        (tmp_path / "marketplace-role").write_text("beat\n")
        env["PORT"] = "1"
        assert healthcheck().returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=10)


# -- compose.yaml -------------------------------------------------------------------------------


@functools.cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: str) -> str:
    """Compose's ${NAME:-default} and ${NAME:?message} with nothing set in the environment."""

    def replace(match):
        if match.group(2) == "?":
            return f"<{match.group(1)} required>"
        return match.group(3)

    return re.sub(r"\$\{(\w+):?([-?])?([^}]*)\}", replace, value)


def app_services(document: dict) -> dict[str, dict]:
    image = document["x-app"]["image"]
    return {name: s for name, s in document["services"].items() if s.get("image") == image}


def test_compose_validates_against_the_compose_specification():
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    document = compose()
    errors = sorted(validator.iter_errors(document), key=lambda e: e.json_path)
    assert not errors, [f"{e.json_path}: {e.message}" for e in errors]
    # The schema is strict enough to notice a misspelt key.
    broken = copy.deepcopy(document)
    broken["services"]["web"]["comand"] = broken["services"]["web"].pop("command")
    assert not validator.is_valid(broken)


def test_compose_runs_every_role_from_one_image():
    document = compose()
    apps = app_services(document)
    roles = {name: service["command"][0] for name, service in apps.items()}
    assert set(roles.values()) == ROLES
    assert set(roles.values()) <= entrypoint_roles()
    assert all(service["build"]["context"] == "." for service in apps.values())
    assert {"postgres", "redis", "elasticsearch"} <= set(document["services"])

    services = document["services"]
    for name in ("postgres", "redis", "elasticsearch"):
        assert services[name]["healthcheck"]["test"], name
    migrate = next(name for name, role in roles.items() if role == "migrate")
    assert services[migrate]["restart"] == "no"
    assert services[migrate]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, role in roles.items():
        if role != "migrate":
            condition = services[name]["depends_on"][migrate]["condition"]
            assert condition == "service_completed_successfully", name

    elasticsearch = services["elasticsearch"]
    assert elasticsearch["image"].rsplit(":", 1)[1].startswith("8.")
    assert elasticsearch["environment"]["discovery.type"] == "single-node"
    assert elasticsearch["environment"]["xpack.security.enabled"] == "false"


def test_compose_gives_each_role_its_volumes_and_privileges():
    apps = app_services(compose())
    by_role = {service["command"][0]: service for service in apps.values()}

    def mounts(role):
        return {
            volume.split(":")[1]: volume.split(":")[0]
            for volume in by_role[role].get("volumes", [])
        }

    media = runtime_env()["MEDIA_ROOT"]
    envs = runtime_env()["MARKETPLACE_VAR_DIR"] + "/envs"
    # One host: web and worker reach the runner's socket through a volume they share.
    assert {mounts(role).get(SOCKET_DIR) for role in ("runner", "web", "worker")} == {"run"}
    assert {mounts(role).get(media) for role in ("runner", "web", "worker")} == {"media"}
    assert {mounts(role).get(envs) for role in ("runner", "worker")} == {"envs"}
    # Only the roles that start models get the privileges bubblewrap needs.
    privileged = {role for role, service in by_role.items() if service.get("privileged")}
    assert privileged == {"runner", "worker"}
    environment = by_role["web"]["environment"]
    assert environment["EXECUTION_BACKEND"] == "local"
    assert environment["MARKETPLACE_ENV"] == "production"
    # The image's health check sends Host: localhost.
    assert "localhost" in interpolate(environment["ALLOWED_HOSTS"]).split(",")


def _extensions_the_migrations_create() -> set[str]:
    operations = {"TrigramExtension": "pg_trgm", "UnaccentExtension": "unaccent"}
    found = set()
    for path in [*ROOT.glob("*/migrations/*.py"), *ROOT.glob("*/*/migrations/*.py")]:
        text = path.read_text()
        found |= {extension for name, extension in operations.items() if f"{name}(" in text}
        found |= set(re.findall(r"CreateExtension\(\s*[\"']([\w-]+)", text))
        found |= set(re.findall(r"CREATE EXTENSION (?:IF NOT EXISTS )?\"?([\w-]+)", text, re.I))
    return found


def test_compose_postgres_has_the_extensions_the_migrations_create():
    needed = _extensions_the_migrations_create()
    assert {"pg_trgm", "unaccent"} <= needed
    image = compose()["services"]["postgres"]["image"]
    # The official image ships contrib (pg_trgm, unaccent); vector needs pgvector's image.
    if "vector" in needed:
        assert image.startswith("pgvector/pgvector:"), image
    else:
        assert re.fullmatch(r"postgres:1[4-9](\.\d+)?", image), image


# -- Kubernetes ----------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in KUBERNETES_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


@functools.cache
def resources() -> list[tuple[Path, dict]]:
    found = []
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path, document))
    return found


@functools.cache
def kustomization() -> dict:
    return yaml.safe_load((KUBERNETES_DIR / "kustomization.yaml").read_text())


def _applied() -> list[dict]:
    listed = set(kustomization()["resources"])
    return [doc for path, doc in resources() if path.name in listed]


def _of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in _applied() if doc["kind"] == kind}


def _pod_specs() -> dict[str, dict]:
    specs = {}
    for kind in ("Deployment", "Job"):
        for name, doc in _of_kind(kind).items():
            specs[name] = doc["spec"]["template"]["spec"]
    return specs


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_validates_strictly(path, version):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert documents, path
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_catches_a_misspelt_field():
    deployment = copy.deepcopy(_of_kind("Deployment")["web"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(KubernetesValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_manifests_use_no_yaml_aliases():
    """kustomize's YAML handling has stumbled on anchors and merge keys: plain YAML only."""
    for path in [*manifest_files(), KUBERNETES_DIR / "kustomization.yaml"]:
        for token in yaml.scan(path.read_text()):
            assert not isinstance(token, yaml.AnchorToken | yaml.AliasToken), path.name


def test_kustomization_lists_every_manifest():
    document = kustomization()
    listed = document["resources"]
    assert len(listed) == len(set(listed))
    files = {p.name for p in manifest_files()}
    examples = {name for name in files if name.endswith(".example.yaml")}
    assert examples == {"secret.example.yaml"}, "the example Secret is never applied"
    assert set(listed) == files - examples
    namespace = document["namespace"]
    assert set(_of_kind("Namespace")) == {namespace}
    for _path, doc in resources():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]
    (image,) = document["images"]
    used = {
        container["image"]
        for spec in _pod_specs().values()
        for container in spec["containers"] + spec.get("initContainers", [])
    }
    assert used == {image["name"]}


def _containers():
    """(pod name, container, is_init) of every pod template."""
    for pod, spec in _pod_specs().items():
        for container in spec.get("initContainers", []):
            yield pod, container, True
        for container in spec["containers"]:
            yield pod, container, False


def test_every_role_runs_with_resources_and_a_fitting_security_context():
    roles = {}
    for pod, container, is_init in _containers():
        first = container["args"][0]
        assert first in entrypoint_roles() or shutil.which(first), (pod, first)
        if not is_init:
            roles.setdefault(first, []).append((pod, container["name"]))
        resources_ = container["resources"]
        assert resources_["requests"]["cpu"] and resources_["requests"]["memory"], pod
        assert resources_["limits"]["memory"], pod
        security = container["securityContext"]
        if security.get("privileged"):
            continue
        assert security["allowPrivilegeEscalation"] is False, (pod, container["name"])
        assert security["capabilities"]["drop"] == ["ALL"], (pod, container["name"])
    assert set(roles) == ROLES
    privileged = {
        (pod, c["name"]) for pod, c, _ in _containers() if c["securityContext"].get("privileged")
    }
    # Only the containers that start model processes: the runner, and the worker's builds.
    assert privileged == {("runner", "runner"), ("worker", "worker")}
    for pod, spec in _pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, pod
        assert spec["securityContext"]["runAsUser"] == IMAGE_USER, pod


def test_web_probes_and_service_wiring():
    config = _of_kind("ConfigMap")["marketplace-config"]["data"]
    web = _of_kind("Deployment")["web"]
    (container,) = web["spec"]["template"]["spec"]["containers"]
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/healthz"
    for probe in probes.values():
        # Django answers 400 to a Host it does not allow; the probes say who they are.
        (host,) = [h["value"] for h in probe["httpHeaders"] if h["name"] == "Host"]
        assert host in config["ALLOWED_HOSTS"].split(",")
        assert probe["port"] in {p["name"] for p in container["ports"]}
    assert container["ports"][0]["containerPort"] == int(runtime_env()["PORT"])

    labels = web["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = _of_kind("Service")["web"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    ingress = _of_kind("Ingress")["marketplace"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "web"
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    hpa = _of_kind("HorizontalPodAutoscaler")["web"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    assert container["resources"]["requests"]["cpu"], "the HPA's utilisation needs a request"
    host = ingress["spec"]["rules"][0]["host"]
    assert host in config["ALLOWED_HOSTS"].split(",")
    assert config["PUBLIC_URL"] == f"https://{host}"


def test_pods_refer_only_to_what_exists():
    config_maps = set(_of_kind("ConfigMap"))
    secrets = {
        doc["metadata"]["name"]
        for path, doc in resources()
        if doc["kind"] == "Secret" and path.name == "secret.example.yaml"
    }
    claims = set(_of_kind("PersistentVolumeClaim"))
    for pod, spec in _pod_specs().items():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for claim in (
            v["persistentVolumeClaim"]["claimName"]
            for v in volumes.values()
            if "persistentVolumeClaim" in v
        ):
            assert claim in claims, pod
        for container in spec["containers"] + spec.get("initContainers", []):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, pod
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, pod
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, (pod, container["name"], mount["name"])


def test_runner_pod_pairs_the_runner_with_its_queue():
    config = _of_kind("ConfigMap")["marketplace-config"]["data"]
    assert config["EXECUTION_BACKEND"] == "celery"
    spec = _pod_specs()["runner"]
    containers = {c["args"][0]: c for c in spec["containers"]}
    assert set(containers) == {"runner", "worker"}
    executor = containers["worker"]
    queues = {e["name"]: e["value"] for e in executor["env"]}["WORKER_QUEUES"]
    assert queues == f"hw-{config['HARDWARE_CLASS']}"

    def socket_volume(container):
        return {m["mountPath"]: m["name"] for m in container["volumeMounts"]}[SOCKET_DIR]

    shared = socket_volume(containers["runner"])
    assert socket_volume(executor) == shared
    assert "emptyDir" in {v["name"]: v for v in spec["volumes"]}[shared]
    # Each container has its own /tmp: the healthcheck's role file must not be shared.
    tmp = {
        c["name"]: {m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/tmp"]
        for c in spec["containers"]
    }
    assert len(set(tmp.values())) == len(tmp)
    # Models need their package and environment where the builder put them.
    for role in ("runner",):
        paths = {m["mountPath"] for m in containers[role]["volumeMounts"]}
        assert {
            runtime_env()["MEDIA_ROOT"],
            runtime_env()["MARKETPLACE_VAR_DIR"] + "/envs",
        } <= paths
    worker_paths = {m["mountPath"] for m in _pod_specs()["worker"]["containers"][0]["volumeMounts"]}
    assert runtime_env()["MARKETPLACE_VAR_DIR"] + "/envs" in worker_paths


def test_the_user_namespace_variant_in_the_readme_validates():
    section = _section("Deploying")
    block = re.search(r"```yaml\n# runner pod: spec.template.spec\n(.*?)```", section, re.S)
    assert block, "README.md shows the user-namespace security context"
    variant = yaml.safe_load(block.group(1))
    deployment = copy.deepcopy(_of_kind("Deployment")["runner"])
    spec = deployment["spec"]["template"]["spec"]
    spec["hostUsers"] = variant["hostUsers"]
    for patch in variant["containers"]:
        (container,) = [c for c in spec["containers"] if c["name"] == patch["name"]]
        container["securityContext"] = patch["securityContext"]
    assert container["securityContext"]["procMount"] == "Unmasked"
    kubernetes_validate.validate(deployment, "1.33.0", strict=True)


# -- environment variables across the files -------------------------------------------------------


def test_every_variable_the_deployment_sets_is_read_by_the_platform():
    allowed = variables_the_platform_reads()
    set_by = {}
    for name, service in app_services(compose()).items():
        for key in service.get("environment", {}):
            set_by.setdefault(key, []).append(f"compose.yaml:{name}")
    for path, doc in resources():
        if doc["kind"] == "ConfigMap":
            keys = doc["data"]
        elif doc["kind"] == "Secret":
            keys = doc.get("stringData", {}) | doc.get("data", {})
        else:
            keys = {}
        for key in keys:
            set_by.setdefault(key, []).append(path.name)
    for pod, _container, _init in _containers():
        for entry in _container.get("env", []):
            set_by.setdefault(entry["name"], []).append(f"{pod}.yaml")
    unknown = {key: where for key, where in set_by.items() if key not in allowed}
    assert not unknown, f"set but read by nothing: {unknown}"
    # The core of a production deployment is in both.
    for key in (
        "SECRET_KEY",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "REDIS_URL",
        "ELASTICSEARCH_URL",
    ):
        assert any(w.startswith("compose.yaml") for w in set_by[key]), key
        assert any(not w.startswith("compose.yaml") for w in set_by[key]), key


@pytest.mark.slow
@pytest.mark.django_db
def test_runner_healthcheck_asks_the_real_runner(tmp_path):
    """The runner's check goes through Django's RunnerClient to the socket the settings
    name: it passes while the real runner service answers there and fails once it stops."""
    from execution.pool import PoolSettings, WarmPool
    from tests.runner_thread import runner_serving

    path = tmp_path / "r.sock"
    pool = WarmPool(PoolSettings(max_processes=1, max_per_version=1), sandbox=False)
    (tmp_path / "marketplace-role").write_text("runner\n")
    env = {**os.environ, "APP_DIR": str(ROOT), "TMPDIR": str(tmp_path), "RUNNER_SOCKET": str(path)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"

    def healthcheck():
        return subprocess.run(
            ["sh", str(ENTRYPOINT), "healthcheck"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    with runner_serving(path, pool):
        passing = healthcheck()
        assert passing.returncode == 0, passing.stderr
    failing = healthcheck()
    assert failing.returncode != 0
    assert "runner: the model runner is not running" in failing.stderr
