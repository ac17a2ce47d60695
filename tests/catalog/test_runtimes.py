"""Each runtime end to end: a demo package is uploaded, built (its environment made, the
model started in the sandbox, its sample input run), published, and then run again through
the same runner the gateway uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog import builder, services
from catalog.demo.loader import MODELS_DIR
from catalog.models import BuildStatus
from execution.process import ModelProcess
from execution.runtimes import get_runtime
from execution.sandbox import sandbox_enabled
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def publish_folder(folder: Path, *, owner_name: str = "runtime-tester", **overrides):
    user = UserFactory(username=owner_name)
    team = user.personal_team
    build, created = services.build_create(
        actor=user, owner=team, source=folder, overrides=overrides
    )
    assert created
    builder.execute_build(build.pk)
    build.refresh_from_db()
    return user, build


def run_sample_again(build, data, content_type="json"):
    spec = builder.model_spec_for(build, services.package_dir(build))
    prepared = get_runtime(build.runtime).prepare(spec, log=lambda _line: None)
    process = ModelProcess(prepared.launch, sandbox=sandbox_enabled())
    process.start(timeout=120)
    try:
        return process.call(content_type, data, timeout=60)
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("folder", "runtime"),
    [
        ("number-utils", "python"),
        pytest.param(
            "word-stats",
            "node",
            marks=pytest.mark.skipif(
                shutil.which("node") is None,
                reason="node not on PATH (install: nodejs; .ci/run does it)",
            ),
        ),
        ("text-tools", "command"),
        ("roman-numerals", "adk"),
    ],
)
def test_runtime_end_to_end(folder, runtime):
    user, build = publish_folder(MODELS_DIR / folder)
    assert build.runtime == runtime
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert build.sample_output is not None
    version = services.version_publish(
        actor=user, model=build.model, bump="major", visibility="public"
    )
    assert version.number == "1.0.0"
    again = run_sample_again(
        build, build.sample_input, "text" if isinstance(build.sample_input, str) else "json"
    )
    assert again.ok, again.error
    assert again.result == build.sample_output


def test_a_command_model_gets_bad_input_as_an_error_and_keeps_running(tmp_path):
    _user, build = publish_folder(MODELS_DIR / "text-tools")
    spec = builder.model_spec_for(build, services.package_dir(build))
    process = ModelProcess(
        get_runtime("command").prepare(spec, log=print).launch, sandbox=sandbox_enabled()
    )
    process.start()
    try:
        bad = process.call("json", {"op": "no-such-op", "text": "x"}, timeout=10)
        assert not bad.ok and bad.error["message"]
        good = process.call("json", {"op": "slugify", "text": "Hello World"}, timeout=10)
        assert good.ok and "hello-world" in str(good.result)
    finally:
        process.stop()


def test_an_adk_algorithm_s_errors_reach_the_caller_and_it_keeps_running(tmp_path):
    """algorithmia-adk's error path calls traceback.format_exception(etype=...), which
    Python 3.10+ rejects; the adk runtime's compatibility shim lets the error through."""
    _user, build = publish_folder(MODELS_DIR / "roman-numerals")
    assert build.status == BuildStatus.SUCCEEDED, build.log
    spec = builder.model_spec_for(build, services.package_dir(build))
    process = ModelProcess(
        get_runtime("adk").prepare(spec, log=lambda _: None).launch, sandbox=sandbox_enabled()
    )
    process.start(timeout=120)
    try:
        bad = process.call("json", {"this": "is not a numeral request"}, timeout=30)
        assert not bad.ok and bad.error["message"] and bad.error["error_type"]
        assert "Traceback" in bad.error.get("stacktrace", "")
        good = process.call("json", build.sample_input, timeout=30)
        assert good.ok and good.result == build.sample_output
    finally:
        process.stop()


@pytest.mark.parametrize("slug", ["iris-onnx", "wine-skops", "diabetes-mlflow"])
def test_standard_formats_end_to_end(slug, tmp_path):
    """ONNX, skops and MLflow models need no code from their publisher: the artefact is
    generated (as a data scientist would export it), published without a model.toml
    runtime of its own, and served by the platform's loader."""
    import tomllib

    from catalog.demo.loader import CATALOG_FILE, _run_generator

    entry = next(e for e in tomllib.loads(CATALOG_FILE.read_text())["models"] if e["slug"] == slug)
    folder = tmp_path / slug
    shutil.copytree(MODELS_DIR / entry["versions"][0], folder)
    _run_generator(entry, folder, lambda _line: None)
    user, build = publish_folder(folder, name=slug)
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert build.runtime in ("onnx", "skops", "mlflow")
    assert build.sample_output is not None
    version = services.version_publish(
        actor=user, model=build.model, bump="major", visibility="public"
    )
    assert version.number == "1.0.0"
    again = run_sample_again(build, build.sample_input)
    assert again.ok, again.error
    assert again.result == build.sample_output
