"""Algorithmia's algorithms API (`/v1/algorithms/...`), driven where it matters with the
unchanged `algorithmia` 2.0.5 client against a live server: info, versions, builds, build
logs, exists, create, compile and publish; the same privacy as `/v1/models` on every route;
and the one client call that cannot work (`update`, whose values the client never sends)."""

from __future__ import annotations

import uuid

import Algorithmia
import pytest
from Algorithmia.errors import AlgorithmException
from rest_framework.test import APIClient

from catalog import builder, services
from catalog.models import Build, Model
from marketplace.celery import app as celery_app
from tests.catalog.conftest import write_package, zip_bytes
from tests.conftest import assert_error_shape
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway import conftest as gateway
from tests.gateway.conftest import TOOLBOX_MODEL, key_client, publish

# The gateway's fixtures: its owner "ada", a runner, storage, and the published toolbox model.
owner, runner, storage, toolbox = gateway.owner, gateway.runner, gateway.storage, gateway.toolbox

pytestmark = pytest.mark.slow

FRESH_MODEL = {
    **TOOLBOX_MODEL,
    "model.toml": TOOLBOX_MODEL["model.toml"].replace('name = "toolbox"', 'name = "fresh"'),
}


@pytest.fixture
def build_worker(settings):
    """A real Celery worker (a thread of this process, on the test database) consuming a
    build queue of this test's own, as the live server queues uploads' builds."""
    from celery.contrib.testing.worker import start_worker

    queue = f"test-builds-{uuid.uuid4().hex[:8]}"
    settings.CATALOG_BUILD_QUEUE = queue
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{queue}-default"
    with start_worker(
        celery_app,
        queues=[queue, f"{queue}-default"],
        perform_ping_check=False,
        pool="solo",
        shutdown_timeout=30,
        loglevel="WARNING",
    ):
        yield queue


@pytest.fixture
def client(live_server, toolbox, owner):
    _key, secret = make_key(owner)
    return Algorithmia.client(secret, live_server.url)


def _unpublished_build(user, files, tmp_path) -> Build:
    source = write_package(tmp_path / uuid.uuid4().hex, files)
    build, _ = services.build_create(actor=user, owner=user.personal_team, source=source)
    builder.execute_build(build.pk)
    build.refresh_from_db()
    assert build.status == "succeeded", build.log
    return build


def test_info_versions_builds_logs_and_exists_through_the_client(client, toolbox):
    build = toolbox.build
    algo = client.algo("ada/toolbox")
    assert algo.exists()
    assert not client.algo("ada/nothing").exists()

    listed = algo.versions()
    assert listed["marker"] is None and listed["next_link"] is None
    [version] = listed["results"]
    assert version["resource_type"] == "algorithm" and version["name"] == "toolbox"
    assert version["id"] == str(toolbox.model_id)
    assert version["details"]["label"] == "Toolbox"
    assert version["version_info"] == {
        "semantic_version": "1.0.0",
        "git_hash": build.package_hash,
        "release_notes": "",
        "sample_input": '{"text": "hello"}',
        "sample_output": '{"echo": {"text": "hello"}}',
    }
    assert version["build"]["build_id"] == str(build.pk)
    assert version["build"]["commit_sha"] == build.package_hash
    assert version["build"]["status"] == "succeeded"
    assert version["build"]["resource_type"] == "algorithm_build"
    assert version["build"]["version_info"] == {"semantic_version": "1.0.0"}
    assert version["compilation"]["successful"] is True
    assert version["compilation"]["output"] == Build.objects.get(pk=build.pk).log
    assert version["settings"]["algorithm_callability"] == "public"
    assert version["settings"]["network_access"] == "isolated"
    assert version["self_link"].endswith(
        f"/v1/algorithms/ada/toolbox/versions/{build.package_hash}"
    )
    # The client's info() without a hash asks for the list; with one, for that version.
    assert algo.info() == listed
    assert algo.info(build.package_hash) == version
    assert algo.info(build.package_hash[:12]) == version

    builds = algo.get_builds()
    assert [b["build_id"] for b in builds["results"]] == [str(build.pk)]
    assert algo.get_build(str(build.pk)) == builds["results"][0]
    with pytest.raises(AlgorithmException, match="No build"):
        algo.get_build(str(uuid.uuid4()))
    with pytest.raises(AlgorithmException, match="No build"):
        algo.get_build_logs("not-a-build")
    logs = algo.get_build_logs(str(build.pk))["logs"]
    assert logs == Build.objects.get(pk=build.pk).log and "received" in logs

    info = client.getJsonHelper("/v1/algorithms/ada/toolbox")
    assert info["id"] == str(toolbox.model_id) and info["name"] == "toolbox"
    assert info["details"]["tagline"].startswith("Echoes")
    assert info["version_info"]["semantic_version"] == "1.0.0"
    assert info["source"]["scm"]["provider"] == "internal"


def test_create_then_upload_compile_publish_and_call(client, owner, build_worker, live_server):
    """A CI script's path: create the algorithm, push its code (here a package upload),
    compile, publish, call the published version."""
    algo = client.algo("ada/fresh")
    created = algo.create(
        details={"label": "Fresh one", "tagline": "Just made"},
        settings={
            "language": "python3-1",
            "source_visibility": "closed",
            "license": "mit",
            "network_access": "isolated",
            "pipeline_enabled": True,
            "environment": "cpu",
        },
    )
    assert created["name"] == "fresh" and created["details"]["label"] == "Fresh one"
    assert created["settings"]["algorithm_callability"] == "private"
    assert algo.exists()
    model = Model.objects.get(owner__slug="ada", slug="fresh")
    assert (model.title, model.tagline, model.license) == ("Fresh one", "Just made", "mit")
    # The client raises a bare Exception naming the status for a refused POST.
    with pytest.raises(Exception, match="409"):
        algo.create(details={"label": "again"}, settings={})
    with pytest.raises(Exception, match="409"):
        algo.compile()  # nothing uploaded yet

    upload = client.requestSession.post(
        f"{live_server.url}/v1/models/ada",
        files={"package": ("fresh.zip", zip_bytes(FRESH_MODEL))},
        headers={"Authorization": client.apiKey},
    )
    assert upload.status_code == 202, upload.text
    compiled = algo.compile()
    assert compiled["compilation"]["successful"] is True, compiled
    assert compiled["build"]["status"] == "succeeded"
    assert "semantic_version" not in compiled["version_info"]
    # (The client sends `published` only when it is true; nothing is published yet.)
    unpublished = algo.versions()["results"]
    assert [v["version_info"]["git_hash"] for v in unpublished] == [
        compiled["version_info"]["git_hash"]
    ]

    published = algo.publish(
        settings={"algorithm_callability": "public"},
        version_info={"version_type": "minor", "release_notes": "First.", "sample_input": "x"},
    )
    assert published["version_info"]["semantic_version"] == "0.1.0"
    assert published["version_info"]["release_notes"] == "First."
    assert published["settings"]["algorithm_callability"] == "public"
    assert published["version_info"]["git_hash"] == compiled["version_info"]["git_hash"]
    assert client.algo("ada/fresh/0.1.0").pipe("abc").result == "ABC"
    # Only the newest build is published, once: a second publish needs a new package.
    with pytest.raises(Exception, match="409"):
        algo.publish(version_info={"version_type": "minor"})
    assert algo.versions(published=True)["results"][0]["version_info"]["semantic_version"] == (
        "0.1.0"
    )


def test_update_needs_json_which_the_2_0_5_client_does_not_send(client, toolbox, live_server):
    algo = client.algo("ada/toolbox")
    # requests form-encodes the dicts update() is given: only their keys reach the server.
    with pytest.raises(Exception, match="400"):
        algo.update(details={"label": "Renamed"}, settings={"license": "apache2"})
    assert Model.objects.get(pk=toolbox.model_id).title == "Toolbox"

    url = f"{live_server.url}/v1/algorithms/ada/toolbox"
    headers = {"Authorization": client.apiKey}
    whole = {
        "details": {"label": "Renamed", "tagline": "New tagline", "summary": "New README"},
        "settings": {
            "license": "apache2",
            "network_access": "isolated",
            "algorithm_callability": "public",
            "environment": "cpu",
            "source_visibility": "closed",
            "pipeline_enabled": True,
        },
    }
    updated = client.requestSession.put(url, json=whole, headers=headers)
    assert updated.status_code == 200, updated.text
    assert updated.json()["details"] == whole["details"]
    assert updated.json()["settings"]["license"] == "apache2"
    model = Model.objects.get(pk=toolbox.model_id)
    assert (model.title, model.tagline, model.readme, model.license) == (
        "Renamed",
        "New tagline",
        "New README",
        "apache2",
    )
    for setting, value in [
        ("network_access", "full"),
        ("algorithm_callability", "private"),
        ("environment", "gpu"),
    ]:
        refused = client.requestSession.put(
            url, json={"settings": {setting: value}}, headers=headers
        )
        assert refused.status_code == 400, refused.text
        assert f"settings.{setting}" in refused.json()["error"]["message"]


def test_versions_pages_and_filters(owner, storage, tmp_path):
    publish(owner, TOOLBOX_MODEL)
    publish(owner, {**TOOLBOX_MODEL, "README.md": "1.1"}, bump="minor")
    publish(owner, {**TOOLBOX_MODEL, "README.md": "2 private"}, visibility="private")
    unpublished = _unpublished_build(owner, {**TOOLBOX_MODEL, "README.md": "draft"}, tmp_path)
    mine, theirs = key_client(owner), key_client(UserFactory())
    url = "/v1/algorithms/ada/toolbox/versions"

    def numbers(client, query=""):
        body = client.get(url + query).json()
        return [v["version_info"].get("semantic_version") for v in body["results"]]

    assert numbers(mine) == [None, "2.0.0", "1.1.0", "1.0.0"]
    assert numbers(theirs) == ["1.1.0", "1.0.0"]
    assert numbers(mine, "?published=true") == ["2.0.0", "1.1.0", "1.0.0"]
    assert numbers(mine, "?published=false") == [None]
    assert numbers(mine, "?callable=true") == ["1.1.0", "1.0.0"]
    assert numbers(mine, "?callable=false") == [None, "2.0.0"]
    assert numbers(theirs, "?published=false") == []
    first = mine.get(url + "?limit=3").json()
    assert len(first["results"]) == 3 and first["marker"]
    assert first["next_link"].endswith(
        f"/v1/algorithms/ada/toolbox/versions?limit=3&marker={first['marker']}"
    )
    rest = mine.get(url, {"limit": 3, "marker": first["marker"]}).json()
    assert [v["version_info"]["semantic_version"] for v in rest["results"]] == ["1.0.0"]
    assert rest["marker"] is None and rest["next_link"] is None
    # The compile log is the owner's; a stranger sees whether it compiled.
    theirs_first = theirs.get(url).json()["results"][0]
    assert theirs_first["compilation"] == {"successful": True}
    hashed = mine.get(f"{url}/{unpublished.package_hash}").json()
    assert hashed["version_info"]["git_hash"] == unpublished.package_hash
    assert_error_shape(theirs.get(f"{url}/{unpublished.package_hash}"), 404)
    assert_error_shape(mine.get(url + "?limit=0"), 400, "InputError")
    assert_error_shape(mine.get(url + "?limit=101"), 400, "InputError")
    assert_error_shape(mine.get(url + "?marker=bm90IGEgbWFya2Vy"), 400, "InputError")
    assert_error_shape(mine.get(url + "?published=maybe"), 400, "InputError")
    assert_error_shape(mine.get(f"{url}/not-a-hash"), 404)


def test_a_private_model_is_a_404_to_others_on_every_route(owner, storage):
    version = publish(owner, TOOLBOX_MODEL, visibility="private")
    build_id = version.build_id
    other_team = TeamFactory(slug="elsewhere")
    outsider = UserFactory()
    MembershipFactory(team=other_team, user=outsider, role="owner")
    team_key = APIClient()
    team_key.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(outsider, team=other_team)[1]}")
    base = "/v1/algorithms/ada/toolbox"
    routes = [
        ("get", base),
        ("put", base),
        ("delete", base),
        ("get", f"{base}/versions"),
        ("post", f"{base}/versions"),
        ("get", f"{base}/versions/{version.build.package_hash}"),
        ("get", f"{base}/builds"),
        ("get", f"{base}/builds/{build_id}"),
        ("get", f"{base}/builds/{build_id}/logs"),
        ("post", f"{base}/compile"),
    ]
    for client in (key_client(outsider), team_key):
        for method, path in routes:
            response = getattr(client, method)(path, {}, format="json")
            error = assert_error_shape(response, 404, "NotFoundError")
            assert "No such algorithm" in error["message"] or "No build" in error["message"]
    anonymous = APIClient()
    assert_error_shape(anonymous.get(base), 404)
    assert_error_shape(anonymous.get(f"{base}/versions"), 404)
    # The owner's members see it all.
    mine = key_client(owner)
    for method, path in routes:
        if method == "get":
            assert mine.get(path).status_code == 200, path


def test_writes_need_the_owner_and_catalog_write(owner, storage):
    publish(owner, TOOLBOX_MODEL)
    stranger = key_client(UserFactory())
    base = "/v1/algorithms/ada/toolbox"
    for path in (f"{base}/compile", f"{base}/versions"):
        assert_error_shape(stranger.post(path, {}, format="json"), 403, "AuthorizationError")
    assert_error_shape(stranger.put(base, {}, format="json"), 403, "AuthorizationError")
    # A public model's builds are its owner's business only.
    assert_error_shape(stranger.get(f"{base}/builds"), 404, "NotFoundError")
    narrow = key_client(owner, scopes=["algo://*"])
    assert_error_shape(narrow.post(f"{base}/compile"), 403, "AuthorizationError")
    assert_error_shape(
        narrow.post("/v1/algorithms/ada", {"name": "x1"}, format="json"), 403, "AuthorizationError"
    )
    assert_error_shape(
        stranger.post("/v1/algorithms/ada", {"name": "x1"}, format="json"),
        403,
        "AuthorizationError",
    )
    assert_error_shape(APIClient().get(f"{base}/builds"), 401, "AuthenticationError")
    assert APIClient().get(base).status_code == 200  # a public model is public


def test_create_validates_and_delete_keeps_what_was_called(owner, storage, runner):
    mine = key_client(owner)
    for bad in ({"name": "Hello"}, {"name": "x"}, {}, {"name": "ok_name", "details": "label"}):
        assert_error_shape(mine.post("/v1/algorithms/ada", bad, format="json"), 400, "InputError")
    assert_error_shape(
        mine.post(
            "/v1/algorithms/ada",
            {"name": "ok_name", "settings": {"network_access": "some"}},
            format="json",
        ),
        400,
        "InputError",
    )
    assert mine.post("/v1/algorithms/ada", {"name": "empty"}, format="json").status_code == 201
    assert mine.delete("/v1/algorithms/ada/empty").status_code == 204
    assert not Model.objects.filter(slug="empty").exists()
    publish(owner, TOOLBOX_MODEL)
    assert mine.post("/v1/algo/ada/toolbox", {"text": "hi"}, format="json").status_code == 200
    assert_error_shape(mine.delete("/v1/algorithms/ada/toolbox"), 409, "ConflictError")
