"""The data pages through Django's test client: browsing, uploads (multipart, with the size
limit and quota as clear messages), downloads, permissions, deletes and connectors, and
what other people cannot see or do there."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from data.models import Collection, Connector, DataEntry, ReadAcl, TeamDataUsage
from marketplace.accounts.models import Role
from tests.data.conftest import files_under

SECRET = "page-secret-Vb7Qm2KxZr9TnW4p"


def browse_url(team, collection, path=""):
    if path:
        return reverse("data:browse_path", args=[team, collection, path])
    return reverse("data:browse", args=[team, collection])


def test_collections_upload_download_and_delete(client, ada, data_root):
    client.force_login(ada)
    home = client.get(reverse("data:home"))
    assert home.status_code == 200 and reverse("data:collections", args=["ada"]) in home.text
    created = client.post(
        reverse("data:collections", args=["ada"]), {"name": "books", "read_acl": "private"}
    )
    assert created.status_code == 302
    assert Collection.objects.get(name="books").read_acl == ReadAcl.PRIVATE

    page = browse_url("ada", "books")
    upload = SimpleUploadedFile("notes.txt", b"hello pages", content_type="text/plain")
    response = client.post(page, {"action": "upload", "file": upload})
    assert response.status_code == 302
    assert client.post(page, {"action": "mkdir", "name": "sub"}).status_code == 302
    listing = client.get(page)
    assert "notes.txt" in listing.text and "sub/" in listing.text

    download = client.get(browse_url("ada", "books", "notes.txt"))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"hello pages"
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"] == 'attachment; filename="notes.txt"'

    assert client.post(page, {"action": "acl", "read_acl": "public"}).status_code == 302
    assert Collection.objects.get(name="books").read_acl == ReadAcl.PUBLIC

    assert client.post(page, {"action": "delete", "name": "notes.txt"}).status_code == 302
    assert not DataEntry.objects.filter(name="notes.txt").exists()
    assert client.post(page, {"action": "delete_collection"}).status_code == 302
    assert not Collection.objects.exists()


def test_size_limit_and_quota_are_clear_messages(client, ada, settings, data_root):
    client.force_login(ada)
    client.post(reverse("data:collections", args=["ada"]), {"name": "c", "read_acl": "my_algos"})
    page = browse_url("ada", "c")
    settings.DATA_MAX_FILE_BYTES = 10
    big = SimpleUploadedFile("big.bin", b"x" * 11)
    response = client.post(page, {"action": "upload", "file": big})
    assert response.status_code == 413 and "at most 10 bytes" in response.text

    settings.DATA_MAX_FILE_BYTES = 1000
    TeamDataUsage.objects.update_or_create(team=ada.personal_team, defaults={"quota_bytes": 5})
    over = SimpleUploadedFile("over.bin", b"y" * 6)
    response = client.post(page, {"action": "upload", "file": over})
    assert response.status_code == 413 and "over its quota of 5 bytes" in response.text
    assert not DataEntry.objects.filter(kind="file").exists()
    assert files_under(data_root) == []


def test_other_people_see_only_public_collections_and_change_nothing(client, ada, bob):
    client.force_login(ada)
    collections = reverse("data:collections", args=["ada"])
    client.post(collections, {"name": "open", "read_acl": "public"})
    client.post(collections, {"name": "closed", "read_acl": "private"})
    client.post(
        browse_url("ada", "closed"),
        {"action": "upload", "file": SimpleUploadedFile("s.txt", b"secret")},
    )
    client.force_login(bob)
    listing = client.get(collections)
    assert listing.status_code == 200 and browse_url("ada", "open") in listing.text
    assert browse_url("ada", "closed") not in listing.text
    assert client.get(browse_url("ada", "closed")).status_code == 404
    assert client.get(browse_url("ada", "closed", "s.txt")).status_code == 404
    refused = client.post(browse_url("ada", "open"), {"action": "delete_collection"})
    assert refused.status_code == 403
    assert client.post(collections, {"name": "mine", "read_acl": "public"}).status_code == 403
    assert Collection.objects.filter(team__slug="ada").count() == 2
    assert client.get(reverse("data:connectors", args=["ada"])).status_code == 404


def test_connector_pages_never_show_the_secret(client, ada, lab, settings, caplog):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    lab.memberships.filter(user=ada).update(role=Role.ADMIN)
    client.force_login(ada)
    connectors = reverse("data:connectors", args=[lab.slug])
    form = {
        "name": "ext",
        "bucket": "team-bucket",
        "endpoint_url": "http://127.0.0.1:9",
        "region": "us-east-1",
        "prefix": "",
        "access_key_id": "AKIAEXAMPLE",
        "secret": SECRET,
    }
    created = client.post(connectors, form)
    assert created.status_code == 302
    listing = client.get(connectors)
    edit_url = reverse("data:connector_edit", args=[lab.slug, "ext"])
    edit = client.get(edit_url)
    assert "…" + SECRET[-4:] in listing.text and edit_url in listing.text
    assert SECRET not in listing.text + edit.text

    refused = client.post(
        connectors, form | {"name": "meta", "endpoint_url": "http://169.254.169.254"}
    )
    assert refused.status_code == 400 and "link-local" in refused.text
    assert SECRET not in refused.text

    kept = client.post(edit_url, form | {"secret": "", "region": "eu-west-1"})
    assert kept.status_code == 302
    connector = Connector.objects.get(name="ext")
    assert connector.region == "eu-west-1" and connector.secret_hint == "…" + SECRET[-4:]
    assert SECRET not in caplog.text
    assert client.post(edit_url, {"action": "delete"}).status_code == 302
    assert not Connector.objects.exists()

    lab.memberships.filter(user=ada).update(role=Role.MEMBER)
    member_view = client.get(connectors)
    assert member_view.status_code == 200 and "Connect a bucket" not in member_view.text
    assert client.post(connectors, form).status_code == 403
