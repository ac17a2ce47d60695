"""Publishing from the browser: upload an archive or a folder, watch the build, publish."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from catalog import builder
from catalog.models import Build, BuildStatus, Version
from tests.catalog.conftest import ECHO_MODEL, zip_bytes
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(db):
    user = UserFactory(username="grace")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def test_upload_an_archive_then_build_and_publish(browser):
    page = browser.get("/new/")
    assert page.status_code == 200 and b"grace" in page.content
    archive = io.BytesIO(zip_bytes(ECHO_MODEL))
    archive.name = "echo.zip"
    response = browser.post("/new/", {"owner": "grace", "package": archive})
    build = Build.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/grace/echo/builds/{build.pk}"
    running = browser.get(response["Location"])
    assert b"following live" in running.content and b"received from grace" in running.content

    builder.execute_build(build.pk)
    done = browser.get(response["Location"])
    assert b"succeeded" in done.content and b"Publish version" in done.content
    published = browser.post(
        f"/grace/echo/builds/{build.pk}/publish",
        {"bump": "major", "visibility": "public", "release_notes": "hi"},
    )
    assert published.status_code == 302 and published["Location"] == "/grace/echo"
    assert Version.objects.get().number == "1.0.0"
    model_page = browser.get("/grace/echo")
    assert b"1.0.0" in model_page.content and b"/v1/algo/grace/echo/1.0.0" in model_page.content
    assert b"<h1>Echo</h1>" in model_page.content  # the README, rendered
    assert b"&quot;text&quot;: &quot;I love it&quot;" in model_page.content  # JSON, not repr


def test_upload_a_folder_with_relative_paths(browser):
    files = [io.BytesIO(text.strip().encode() + b"\n") for text in ECHO_MODEL.values()]
    for handle, name in zip(files, ECHO_MODEL, strict=True):
        handle.name = name.rsplit("/", 1)[-1]
    response = browser.post("/new/", {"owner": "grace", "files": files, "paths": list(ECHO_MODEL)})
    assert response.status_code == 302, response.content
    assert Build.objects.get().status == BuildStatus.QUEUED


def test_folder_paths_cannot_escape(browser):
    handle = io.BytesIO(b"x")
    handle.name = "evil.txt"
    response = browser.post(
        "/new/", {"owner": "grace", "files": [handle], "paths": ["../../evil.txt"]}, follow=True
    )
    assert b"Refusing the file path" in response.content
    assert not Build.objects.exists()


def test_invalid_package_shows_the_reason(browser):
    archive = io.BytesIO(zip_bytes({"predict.py": "x = 1"}))
    archive.name = "bad.zip"
    response = browser.post("/new/", {"owner": "grace", "package": archive}, follow=True)
    assert b"model.toml is missing" in response.content


def test_cannot_upload_to_a_namespace_one_cannot_publish_to(browser):
    team = TeamFactory(slug="finance")
    MembershipFactory(team=team, user=browser.user, role="billing")
    page = browser.get("/new/")
    assert b'value="finance"' not in page.content
    archive = io.BytesIO(zip_bytes(ECHO_MODEL))
    archive.name = "echo.zip"
    response = browser.post("/new/", {"owner": "finance", "package": archive}, follow=True)
    assert b"Choose a namespace you can publish to" in response.content
    assert not Build.objects.exists()


def test_builds_of_others_are_not_found(browser):
    owner = UserFactory(username="owner-person")
    client = Client()
    client.force_login(owner)
    archive = io.BytesIO(zip_bytes(ECHO_MODEL))
    archive.name = "echo.zip"
    client.post("/new/", {"owner": "owner-person", "package": archive})
    build = Build.objects.get()
    assert browser.get(f"/owner-person/echo/builds/{build.pk}").status_code == 404
    assert browser.get("/owner-person/echo").status_code == 404  # nothing published yet


def test_the_model_page_offers_snippets_and_the_api_lists_them(browser):
    from tests.factories import make_key

    archive = io.BytesIO(zip_bytes(ECHO_MODEL))
    archive.name = "echo.zip"
    browser.post("/new/", {"owner": "grace", "package": archive})
    build = Build.objects.get()
    builder.execute_build(build.pk)
    browser.post(
        f"/grace/echo/builds/{build.pk}/publish", {"bump": "major", "visibility": "public"}
    )
    key, _secret = make_key(browser.user)
    page = browser.get("/grace/echo").content.decode()
    assert 'data-tab="curl"' in page and 'data-tab="python"' in page
    assert key.prefix in page  # the user's own key prefix, never a secret
    body = Client().get("/v1/models/grace/echo/snippets").json()
    assert body["version"] == "1.0.0"
    languages = {s["language"] for s in body["snippets"]}
    assert {"curl", "python", "python-algorithmia", "java", "nodejs", "cli"} <= languages
    # Each language sends the placeholder when MARKETPLACE_API_KEY is unset, but for Go and
    # the command line, which read the variable alone.
    assert all(
        "YOUR_API_KEY" in s["code"] for s in body["snippets"] if s["language"] not in ("go", "cli")
    )
