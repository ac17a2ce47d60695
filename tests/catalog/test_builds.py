"""Publishing end to end through the API: upload → build (run by the builder a Celery task
calls) → publish, with every rule of docs/packages.md's versions and package format."""

from __future__ import annotations

import time

import pytest
from django.db import IntegrityError, transaction

from catalog import builder, services
from catalog.models import Build, BuildStatus, Model, Version
from execution.process import ModelProcess
from execution.runtimes import get_runtime
from tests.catalog.conftest import ECHO_MODEL, upload
from tests.conftest import assert_error_shape
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key

pytestmark = pytest.mark.django_db


def _build(response) -> Build:
    return Build.objects.get(pk=response.json()["build"]["id"])


def test_upload_build_publish_and_run(publisher):
    response = upload(publisher, "ada", ECHO_MODEL)
    assert response.status_code == 202, response.content
    body = response.json()["build"]
    assert body["status"] == "queued" and body["model"] == "ada/echo"
    build = _build(response)

    builder.execute_build(build.pk)
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert build.sample_output == {"echo": {"text": "I love it"}, "state": {"loaded": True}}
    detail = publisher.get(f"/v1/models/ada/echo/builds/{build.pk}").json()
    assert detail["status"] == "succeeded" and detail["duration"] > 0

    logs = publisher.get(f"/v1/models/ada/echo/builds/{build.pk}/logs?offset=0").json()
    assert logs["complete"] and "Build succeeded" in logs["text"]
    assert "handling" in logs["text"]  # what the model printed on its sample input
    tail = publisher.get(f"/v1/models/ada/echo/builds/{build.pk}/logs?offset={logs['offset']}")
    assert tail.json()["text"] == ""

    published = publisher.post(
        "/v1/models/ada/echo/versions",
        {"bump": "minor", "visibility": "public", "release_notes": "first"},
        format="json",
    )
    assert published.status_code == 201, published.content
    assert published.json()["version"] == "0.1.0"
    assert published.json()["endpoint"].endswith("/v1/algo/ada/echo/0.1.0")
    assert published.json()["royalty_per_call"] == "0.001000"
    model = Model.objects.get(slug="echo")
    assert model.visibility == "public" and model.title == "Echo" and "Returns" in model.readme

    # The published build runs its sample through the same runner the gateway uses.
    spec = builder.model_spec_for(build, services.package_dir(build))
    process = ModelProcess(
        get_runtime("python").prepare(spec, log=lambda _: None).launch, sandbox=True
    )
    process.start()
    try:
        result = process.call("json", {"text": "again"}, timeout=10)
    finally:
        process.stop()
    assert result.result == {"echo": {"text": "again"}, "state": {"loaded": True}}


def test_the_same_package_is_the_same_build(publisher):
    first = upload(publisher, "ada", ECHO_MODEL)
    again = upload(publisher, "ada", ECHO_MODEL)
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["build"]["id"] == again.json()["build"]["id"]
    changed = upload(publisher, "ada", {**ECHO_MODEL, "README.md": "# Echo 2"})
    assert changed.status_code == 202
    assert changed.json()["build"]["id"] != first.json()["build"]["id"]


def test_a_second_build_of_an_unchanged_environment_installs_nothing(publisher):
    files = {**ECHO_MODEL, "requirements.txt": "six>=1.16"}
    first = _build(upload(publisher, "ada", files))
    started = time.monotonic()
    builder.execute_build(first.pk)
    first_seconds = time.monotonic() - started
    first.refresh_from_db()
    assert first.status == BuildStatus.SUCCEEDED, first.log
    assert "Installing requirements" in first.log

    second = _build(
        upload(
            publisher, "ada", {**files, "predict.py": ECHO_MODEL["predict.py"] + "\n# a new line\n"}
        )
    )
    started = time.monotonic()
    builder.execute_build(second.pk)
    second_seconds = time.monotonic() - started
    second.refresh_from_db()
    assert second.status == BuildStatus.SUCCEEDED
    assert "nothing to install" in second.log and "Installing" not in second.log
    assert second.environment_key == first.environment_key
    assert second_seconds < first_seconds


def test_a_failing_model_fails_its_build_with_the_reason_in_the_log(publisher):
    broken = {
        **ECHO_MODEL,
        "predict.py": "def load():\n    raise RuntimeError('no weights')\n"
        "def apply(data, state):\n    return data\n",
    }
    build = _build(upload(publisher, "ada", broken))
    builder.execute_build(build.pk)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert "no weights" in build.error and "no weights" in build.log
    refused = publisher.post(
        "/v1/models/ada/echo/versions", {"bump": "minor", "visibility": "public"}, format="json"
    )
    assert_error_shape(refused, 409, "ConflictError")


def test_sample_input_raising_fails_the_build(publisher):
    raising = {
        **ECHO_MODEL,
        "predict.py": "def load():\n    return 1\n"
        "def apply(data, state):\n    raise ValueError('cannot read ' + str(data))\n",
    }
    build = _build(upload(publisher, "ada", raising))
    builder.execute_build(build.pk)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert "sample input failed" in build.error and "cannot read" in build.error


def test_a_failed_build_is_rebuilt_when_uploaded_again(publisher):
    build = _build(
        upload(
            publisher,
            "ada",
            {**ECHO_MODEL, "requirements.txt": "this-package-does-not-exist-anywhere-4242==1"},
        )
    )
    builder.execute_build(build.pk)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "uv pip failed" in build.error
    again = upload(
        publisher,
        "ada",
        {**ECHO_MODEL, "requirements.txt": "this-package-does-not-exist-anywhere-4242==1"},
    )
    assert again.status_code == 200
    build.refresh_from_db()
    assert build.status == BuildStatus.QUEUED and "Rebuilding" in build.log


@pytest.mark.parametrize(
    ("files", "field"),
    [
        ({"predict.py": "def apply(x): return x"}, "model.toml"),
        (
            {**ECHO_MODEL, "model.toml": ECHO_MODEL["model.toml"].replace('"python"', '"cobol"')},
            "runtime",
        ),
        (
            {
                **ECHO_MODEL,
                "model.toml": ECHO_MODEL["model.toml"].replace(
                    "predict.py:apply", "predict.py:nope"
                ),
            },
            "entrypoint",
        ),
        (
            {
                **ECHO_MODEL,
                "model.toml": ECHO_MODEL["model.toml"].replace('"echo"', '"Echo Model"'),
            },
            "name",
        ),
        ({**ECHO_MODEL, "model.toml": ECHO_MODEL["model.toml"] + "\nbogus = 1\n"}, "model.toml"),
        (
            {
                **ECHO_MODEL,
                "model.toml": ECHO_MODEL["model.toml"].replace(
                    "[io]", '[io]\ninput_schema = "schema.json"'
                ),
                "schema.json": '{"type": "object", "required": ["words"]}',
            },
            "io.sample_input",
        ),
    ],
    ids=[
        "missing-manifest",
        "unknown-runtime",
        "bad-entrypoint",
        "bad-slug",
        "typo-key",
        "sample-fails-schema",
    ],
)
def test_invalid_packages_are_400s_naming_the_field(publisher, files, field):
    response = upload(publisher, "ada", files)
    error = assert_error_shape(response, 400, "InputError")
    assert field in error["message"], error
    assert not Build.objects.exists()


def test_unsafe_archive_is_refused_and_writes_nothing_outside(publisher, isolated_storage):
    before = {p for p in isolated_storage.rglob("*")}
    response = upload(publisher, "ada", {**ECHO_MODEL, "../../escaped.txt": "gotcha"})
    error = assert_error_shape(response, 400, "InputError")
    assert ".." in error["message"]
    after = {p for p in isolated_storage.rglob("*") if p.is_file()}
    assert not any(p.name == "escaped.txt" for p in after)
    assert not (isolated_storage.parent / "escaped.txt").exists()
    assert {p for p in after if "staging" in p.parts} == set()
    assert {p for p in after if p not in before} == set()


def test_publish_needs_the_catalog_scope_and_a_publishing_role(db):
    owner = UserFactory(username="owner")
    team = TeamFactory(slug="acme")
    MembershipFactory(team=team, user=owner, role="owner")
    from rest_framework.test import APIClient

    def client_with(secret):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
        return client

    no_scope = client_with(make_key(owner, scopes=["algo://*"])[1])
    assert_error_shape(upload(no_scope, "acme", ECHO_MODEL), 403, "AuthorizationError")

    accountant = UserFactory(username="accountant")
    MembershipFactory(team=team, user=accountant, role="billing")
    assert_error_shape(upload(client_with(make_key(accountant)[1]), "acme", ECHO_MODEL), 403)

    stranger = client_with(make_key(UserFactory(username="stranger"))[1])
    assert_error_shape(upload(stranger, "acme", ECHO_MODEL), 403)

    other_team = TeamFactory(slug="other")
    MembershipFactory(team=other_team, user=owner, role="owner")
    team_key = client_with(make_key(owner, team=other_team)[1])
    assert_error_shape(upload(team_key, "acme", ECHO_MODEL), 403)

    assert upload(client_with(make_key(owner)[1]), "acme", ECHO_MODEL).status_code == 202
    assert (
        upload(
            client_with(make_key(owner, team=team)[1]), "acme", {**ECHO_MODEL, "README.md": "v2"}
        ).status_code
        == 202
    )
    assert_error_shape(upload(no_scope, "nobody-here", ECHO_MODEL), 403)


def _published_build(publisher, readme: str) -> Build:
    build = _build(upload(publisher, "ada", {**ECHO_MODEL, "README.md": readme}))
    builder.execute_build(build.pk)
    return build


def test_versions_bump_and_visibility_changes_only_at_major(publisher):
    _published_build(publisher, "one")
    publish = lambda **body: publisher.post("/v1/models/ada/echo/versions", body, format="json")  # noqa: E731
    assert publish(bump="patch", visibility="public").json()["version"] == "0.0.1"
    _published_build(publisher, "two")
    error = assert_error_shape(publish(bump="minor", visibility="private"), 400)
    assert "major" in error["message"]
    assert publish(bump="major", visibility="private").json()["version"] == "1.0.0"
    _published_build(publisher, "three")
    assert publish(bump="minor", visibility="private").json()["version"] == "1.1.0"
    assert_error_shape(publish(bump="minor", visibility="private"), 409)  # already published
    listed = publisher.get("/v1/models/ada/echo/versions").json()
    assert [v["version"] for v in listed["results"]] == ["1.1.0", "1.0.0", "0.0.1"]
    anonymous = publisher.__class__()
    public_only = anonymous.get("/v1/models/ada/echo/versions").json()
    assert [v["version"] for v in public_only["results"]] == ["0.0.1"]
    assert anonymous.get("/v1/models/ada/echo/versions/latest").json()["version"] == "0.0.1"
    assert_error_shape(anonymous.get("/v1/models/ada/echo/versions/1.0.0"), 404)
    assert_error_shape(anonymous.get("/v1/models/ada/echo/builds"), 401)


def test_published_versions_and_builds_are_immutable(publisher):
    _published_build(publisher, "one")
    publisher.post(
        "/v1/models/ada/echo/versions", {"bump": "major", "visibility": "public"}, format="json"
    )
    version = Version.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Version.objects.filter(pk=version.pk).update(patch=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        Version.objects.filter(pk=version.pk).update(visibility="private")
    with pytest.raises(IntegrityError), transaction.atomic():
        Build.objects.filter(pk=version.build_id).update(manifest={"name": "swapped"})
    Version.objects.filter(pk=version.pk).update(release_notes="notes may be edited")


def test_private_models_and_builds_are_invisible_to_others(publisher):
    _published_build(publisher, "secret")
    publisher.post(
        "/v1/models/ada/echo/versions", {"bump": "major", "visibility": "private"}, format="json"
    )
    from rest_framework.test import APIClient

    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(UserFactory())[1]}")
    assert_error_shape(stranger.get("/v1/models/ada/echo"), 404)
    assert_error_shape(stranger.get("/v1/models/ada/echo/versions"), 404)
    assert_error_shape(stranger.get("/v1/models/ada/echo/builds"), 404)
    assert "echo" not in stranger.get("/v1/models?search=echo").content.decode()
    assert publisher.get("/v1/models?search=echo").json()["count"] == 1


def test_a_dead_worker_s_build_is_retried_then_given_up(publisher):
    from datetime import timedelta

    from django.utils import timezone

    build = _build(upload(publisher, "ada", ECHO_MODEL))
    claimed = services.build_claim(build.pk)
    assert claimed.status == BuildStatus.BUILDING and claimed.attempts == 1
    assert services.build_claim(build.pk) is None  # a live worker holds it
    Build.objects.filter(pk=build.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert services.builds_reap() == 1
    builder.execute_build(build.pk)  # what the re-queued task does
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED and build.attempts == 2
    assert "Retrying (attempt 2)" in build.log

    doomed = _build(upload(publisher, "ada", {**ECHO_MODEL, "README.md": "doomed"}))
    Build.objects.filter(pk=doomed.pk).update(
        status=BuildStatus.BUILDING, attempts=3, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert services.build_claim(doomed.pk) is None
    doomed.refresh_from_db()
    assert doomed.status == BuildStatus.FAILED and "giving up" in doomed.error


def test_an_oversized_upload_is_a_413_before_it_is_read(publisher, settings):
    settings.PACKAGE_MAX_UPLOAD_BYTES = 1000
    files = {**ECHO_MODEL, "weights.bin": "x" * 5000}
    error = assert_error_shape(upload(publisher, "ada", files), 413, "RequestTooLargeError")
    assert "1,000" in error["message"]
    assert not Build.objects.exists()
