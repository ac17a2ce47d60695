"""Every snippet, run as a user would run it, against a live server and a published model.

For each language whose toolchain is on this machine, the rendered program is written to a
fresh directory and run with the real key in MARKETPLACE_API_KEY, for a JSON input, a text
input and a binary input full of what breaks quoting (quotes, backslashes, newlines, tabs,
`$HOME`, back quotes, interpolation markers, non-ASCII text); then for a model error and for
a call without a key (the placeholder, or no key, is sent and refused). The toolbox model
echoes JSON as {"echo": input}, upper-cases text and reverses bytes, so every expected output
is known.
A language whose toolchain is missing is skipped, naming the Debian package to install."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog.snippets import SnippetContext, get_language, ordered_languages
from tests.factories import make_key
from tests.gateway.conftest import owner, runner, storage, toolbox  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

WEIRD = (
    'He said "it\'s" \\ back\\slash\\n\nnew line\ttab $HOME `whoami` $(id) ${x} #{x} #@x '
    "%s %% {{ x }} ?> */\r\nnaïve café — 東京 🚀"
)
JSON_INPUT = {"text": WEIRD, "nested": {"k'\"ey $HOME\\": [1, 2.5, True, None, "\\", "🚀"]}}
BINARY_INPUT = bytes(range(256)) + "東京".encode()
FAILING_INPUT = {"fail": 'boom: it\'s "bad"'}

VENV_BIN = Path(sys.executable).parent

# A web page has no environment: the browser snippet sends its placeholder, and this stands
# in for the person who pastes their key over it. It also plays the page for a download.
BROWSER_SHIM = """
const { writeFileSync } = require("node:fs");
const key = process.env.MARKETPLACE_API_KEY;
const realFetch = globalThis.fetch;
globalThis.fetch = (url, init) => {
  if (key && init.headers.Authorization === "Simple YOUR_API_KEY") {
    init = { ...init, headers: { ...init.headers, Authorization: `Simple ${key}` } };
  }
  return realFetch(url, init);
};
const objects = new Map();
URL.createObjectURL = (blob) => {
  const url = `blob:test/${objects.size}`;
  objects.set(url, blob);
  return url;
};
globalThis.document = {
  createElement: () => ({
    click() {
      objects
        .get(this.href)
        .arrayBuffer()
        .then((data) => writeFileSync(this.download, Buffer.from(data)));
    },
  }),
};
"""


@dataclass(frozen=True)
class Toolchain:
    tools: tuple[str, ...]  # executables that must be on PATH
    package: str  # where they come from, for the skip message
    command: Callable[[Path], list[str]]
    model_error_fails: bool = True  # exits non-zero on a model error
    filename: str | None = None  # overrides the snippet's own file name


def _dotnet(path: Path) -> list[str]:
    project = path.parent / "app"
    script = (
        f"dotnet new console -o {project} --force >/dev/null && "
        f"cp {path} {project}/Program.cs && dotnet run --project {project}"
    )
    return ["bash", "-c", script]


def _argv(*head: str) -> Callable[[Path], list[str]]:
    return lambda path: [*head, str(path)]


TOOLCHAINS = {
    "curl": Toolchain(("bash", "curl"), "curl", _argv("bash")),
    "python": Toolchain((), "python3", _argv(sys.executable)),
    "python-algorithmia": Toolchain((), "python3", _argv(sys.executable)),
    "javascript": Toolchain(
        ("node",),
        "nodejs",
        _argv("node", "--require", "./browser.cjs"),
        model_error_fails=False,  # a web page has no exit status
        filename="call_model.mjs",  # a module, for its top-level await
    ),
    "nodejs": Toolchain(("node",), "nodejs", _argv("node")),
    "go": Toolchain(("go",), "golang-go", _argv("go", "run")),
    "java": Toolchain(
        ("java",),
        "openjdk-17-jdk-headless",
        # JVM flags for a faster start only: the source file is run as it is.
        _argv("java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"),
    ),
    "ruby": Toolchain(("ruby",), "ruby", _argv("ruby")),
    "php": Toolchain(("php",), "php-cli", _argv("php")),
    "r": Toolchain(("Rscript",), "r-base-core r-cran-httr2", _argv("Rscript")),
    "csharp": Toolchain(
        ("dotnet",), "the .NET SDK (not in Debian: packages.microsoft.com)", _dotnet
    ),
    "cli": Toolchain(("bash",), "bash", _argv("bash")),
}

NOT_RUN = {
    "rust": "the Rust snippet needs the reqwest and serde_json crates from crates.io, which "
    "this test environment cannot reach (its string literals are checked with rustc in "
    "test_snippets.py)",
}


def test_every_language_is_run_or_says_why_not():
    assert {language.slug for language in ordered_languages()} == set(TOOLCHAINS) | set(NOT_RUN)


def _missing(slug: str) -> str | None:
    """Why `slug` cannot run here, or None."""
    if slug in NOT_RUN:
        return NOT_RUN[slug]
    toolchain = TOOLCHAINS[slug]
    missing = [tool for tool in toolchain.tools if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not on PATH (install: {toolchain.package})"
    if slug == "r":
        check = "quit(status = !requireNamespace('httr2', quietly = TRUE))"
        if subprocess.run(["Rscript", "-e", check], capture_output=True, timeout=60).returncode:
            return "the R package httr2 is not installed (install: r-cran-httr2)"
    if slug == "cli" and not (VENV_BIN / "marketplace").exists():
        return f"the marketplace command is not installed in {VENV_BIN}"
    return None


@dataclass
class Run:
    case: str
    code: str
    returncode: int
    stdout: bytes
    stderr: bytes
    directory: Path
    seconds: float

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).decode("utf-8", "replace")

    def describe(self) -> str:
        return (
            f"--- {self.case}: exit {self.returncode} after {self.seconds:.1f} s\n"
            f"stdout: {self.stdout.decode('utf-8', 'replace')[-2000:]}\n"
            f"stderr: {self.stderr.decode('utf-8', 'replace')[-2000:]}\n"
            f"--- the program:\n{self.code}"
        )


def _run(slug: str, case: str, ctx: SnippetContext, key: str | None, work: Path) -> Run:
    toolchain = TOOLCHAINS[slug]
    language = get_language(slug)
    code = language.render(ctx)
    directory = work / case
    directory.mkdir()
    path = directory / (toolchain.filename or language.filename)
    path.write_text(code, encoding="utf-8")
    (directory / "browser.cjs").write_text(BROWSER_SHIM)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MARKETPLACE_", "ALGORITHMIA_"))
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        XDG_CONFIG_HOME=str(work),  # no saved `marketplace login`
        DOTNET_CLI_TELEMETRY_OPTOUT="1",
    )
    if key is not None:
        env["MARKETPLACE_API_KEY"] = key
    started = time.monotonic()
    done = subprocess.run(
        toolchain.command(path),
        cwd=directory,
        env=env,
        capture_output=True,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started
    return Run(case, code, done.returncode, done.stdout, done.stderr, directory, elapsed)


def _check(slug: str, run: Run) -> str | None:
    """What is wrong with `run`, or None."""
    try:
        return _problem(slug, run)
    except (ValueError, KeyError, TypeError) as exc:  # not the JSON expected, say
        return f"the output could not be read: {exc!r}"


def _problem(slug: str, run: Run) -> str | None:
    toolchain = TOOLCHAINS[slug]
    stdout = run.stdout.decode("utf-8", "replace")
    if run.case == "unauthorized":
        # No key in the environment: the placeholder is sent and the server refuses it.
        if "Invalid API key" not in run.output and "401" not in run.output:
            return "expected the server's 401 to be reported"
        return None
    if run.case == "model-error":
        if "boom" not in run.output:
            return "expected the model's error message"
        if toolchain.model_error_fails and run.returncode == 0:
            return "expected a non-zero exit status for a model error"
        return None
    if run.returncode != 0:
        return f"exit status {run.returncode}"
    if run.case == "json":
        if json.loads(stdout) != {"echo": JSON_INPUT}:
            return "the printed JSON is not the model's result"
    elif run.case == "text":
        expected = WEIRD.upper()
        if stdout not in (expected, expected + "\n"):
            return f"expected the upper-cased text, got {stdout!r}"
    elif run.case == "binary":
        written = run.directory / "output.bin"
        if not written.exists() or written.read_bytes() != BINARY_INPUT[::-1]:
            return "output.bin does not hold the reversed bytes"
        if "output.bin" not in run.output:
            return "expected a message naming output.bin"
    return None


@pytest.fixture
def _collect_garbage():
    """The runner fixture's threads (runner_service's request and pool-maintenance threads)
    leave their database connections open; once they have ended, collecting them closes
    those connections, so the test database can be dropped at the end."""
    yield
    gc.collect()


def _runnable(slug: str):
    reason = _missing(slug)
    return pytest.param(slug, marks=pytest.mark.skipif(reason is not None, reason=reason or ""))


@pytest.mark.parametrize("slug", [_runnable(language.slug) for language in ordered_languages()])
def test_the_snippet_runs_and_prints_the_result(
    _collect_garbage,
    slug,
    live_server,
    toolbox,  # noqa: F811
    owner,  # noqa: F811
):
    _key, secret = make_key(owner)
    common = {"base_url": live_server.url, "owner": "ada", "name": "toolbox", "version": "1.0.0"}
    # The toolbox answers JSON with JSON, text with text and bytes with bytes.
    cases = {
        "json": (SnippetContext(content_type="json", data=JSON_INPUT, **common), secret),
        "text": (
            SnippetContext(content_type="text", data=WEIRD, result_type="text", **common),
            secret,
        ),
        "binary": (
            SnippetContext(
                content_type="binary", data=BINARY_INPUT, result_type="binary", **common
            ),
            secret,
        ),
        "model-error": (SnippetContext(content_type="json", data=FAILING_INPUT, **common), secret),
        "unauthorized": (SnippetContext(content_type="json", data={"text": "hi"}, **common), None),
    }
    work = Path(tempfile.mkdtemp(prefix=f"snippets-{slug}-"))
    try:
        with ThreadPoolExecutor(max_workers=len(cases)) as pool:
            runs = list(pool.map(lambda case: _run(slug, case, *cases[case], work=work), cases))
        failures = [
            f"{problem}\n{run.describe()}"
            for run in runs
            if (problem := _check(slug, run)) is not None
        ]
        assert not failures, "\n\n".join(failures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
