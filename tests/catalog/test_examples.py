"""The examples of the home page and the docs are true: each one of catalog/demo/examples.toml
is run, as the shell command the page shows, against a live server on which the demo models
it calls were published through the real path, and must answer what the page says; and every
model a page or a doc names in an example call is one of the demo catalogue."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from catalog.demo.examples import demo_examples
from catalog.demo.loader import CATALOG_FILE, load_demo_catalog
from tests.factories import UserFactory, make_key
from tests.gateway.conftest import runner, storage  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
# Every page and doc that shows a call.
EXAMPLE_SOURCES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "templates/core/home.html",
    ROOT / "templates/core/docs.html",
]
# OWNER/NAME as the calls name them: a path, an Algorithmia client, the CLI.
CALL_PATTERNS = (
    re.compile(r"/v1/algo/([a-z][a-z0-9_-]+)/([a-z][a-z0-9_-]+)"),
    re.compile(r"\.algo\(\"([a-z][a-z0-9_-]+)/([a-z][a-z0-9_-]+)"),
    re.compile(r"marketplace call ([a-z][a-z0-9_-]+)/([a-z][a-z0-9_-]+)"),
)


def demo_models() -> set[tuple[str, str]]:
    entries = tomllib.loads(CATALOG_FILE.read_text())["models"]
    return {(entry["owner"], entry["slug"]) for entry in entries}


def test_every_model_an_example_calls_is_in_the_demo_catalogue():
    known = demo_models()
    named = []
    for source in EXAMPLE_SOURCES:
        text = source.read_text()
        for pattern in CALL_PATTERNS:
            for owner, name in pattern.findall(text):
                named.append((source.name, owner.replace("_", "-"), name))
    assert named, "no example call found: the patterns are wrong"
    unknown = [entry for entry in named if entry[1:] not in known]
    assert not unknown, f"examples calling models the demo catalogue does not have: {unknown}"
    for example in demo_examples().values():
        assert (example.owner, example.name_slug) in known, example


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("curl") is None,
    reason="curl is not installed, and the pages' examples are curl commands "
    "(apt-get install curl; .ci/run does it)",
)
def test_every_example_answers_what_the_pages_show(
    transactional_db,
    storage,  # noqa: F811
    runner,  # noqa: F811
    live_server,
    tmp_path,
):
    examples = demo_examples()
    wanted = {example.name_slug for example in examples.values()}
    admin = UserFactory(username="demo-admin", is_staff=True)
    report = load_demo_catalog(admin=admin, say=lambda _line: None, only=wanted)
    assert report.failed == 0 and report.published >= len(wanted)
    (tmp_path / "image.png").write_bytes(examples["binary"].input)
    env = {**os.environ, "MARKETPLACE_API_KEY": make_key(admin)[1]}
    wrong = []
    for example in examples.values():
        done = subprocess.run(
            ["bash", "-c", example.curl(live_server.url) + " --silent --show-error"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (example.name, done.stderr)
        answer = json.loads(done.stdout)
        if "output=raw" in example.query:
            got = {"result": answer}
        else:
            got = {"result": answer.get("result")} if "result" in answer else answer
        expected = (
            {"error": example.error} if example.error is not None else {"result": example.result}
        )
        if "error" in got:
            got = {"error": got["error"].get("message")}
        if got != expected:
            wrong.append(f"{example.name}: recorded {expected}, answered {json.dumps(got)}")
    assert not wrong, "\n".join(wrong)
