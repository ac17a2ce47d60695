"""The data API's answers where the client is not the point: errors, limits, ranges, HEAD,
path attacks, quota accounting and the audit trail."""

from __future__ import annotations

import pytest

from data import selectors
from data.models import DataEntry, TeamDataUsage
from marketplace.audit.models import AuditEvent
from tests.data.conftest import api_for, files_under


def make_collection(api, name="c", acl=None, owner=".my"):
    body = {"name": name} | ({"acl": acl} if acl is not None else {})
    response = api.post(f"/v1/data/{owner}", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"result": f"data://{owner}/{name}"}


def put(api, path, content: bytes, **extra):
    return api.generic(
        "PUT", f"/v1/data/{path}", content, content_type="application/octet-stream", **extra
    )


def read(response) -> bytes:
    return b"".join(response.streaming_content)


def test_unauthenticated_requests_are_refused(client):
    assert client.get("/v1/data/.my/c").status_code == 401


def test_put_get_head_and_listing_shapes(ada_api):
    make_collection(ada_api)
    response = put(ada_api, ".my/c/dir/file.txt", b"hello")
    assert response.status_code == 200
    assert response.json() == {"result": "data://.my/c/dir/file.txt"}

    got = ada_api.get("/v1/data/ada/c/dir/file.txt")
    assert got.status_code == 200 and read(got) == b"hello"
    assert got["Content-Length"] == "5" and got["X-Data-Type"] == "file"
    assert got["Content-Type"] == "application/octet-stream"

    head = ada_api.head("/v1/data/.my/c/dir/file.txt")
    assert head.status_code == 200 and head["Content-Length"] == "5"
    assert head["X-Data-Type"] == "file" and "GMT" in head["Last-Modified"]
    assert ada_api.head("/v1/data/.my/c/dir")["X-Data-Type"] == "directory"
    missing = ada_api.head("/v1/data/.my/c/nothing")
    assert missing.status_code == 404 and "no such file" in missing["X-Error-Message"]

    listing = ada_api.get("/v1/data/.my/c", {"acl": "true"}).json()
    assert listing == {"folders": [{"name": "dir"}], "files": [], "acl": {"read": ["algo://.my/*"]}}
    files = ada_api.get("/v1/data/.my/c/dir").json()["files"]
    assert files[0]["filename"] == "file.txt" and files[0]["size"] == 5
    assert files[0]["last_modified"].endswith("Z")


def test_listing_pages_follow_markers(ada_api, settings):
    settings.DATA_LIST_PAGE_SIZE = 3
    make_collection(ada_api)
    names = [f"f{i:02d}" for i in range(7)]
    for name in names:
        put(ada_api, f".my/c/{name}", b"x")
    seen, marker, pages = [], None, 0
    while True:
        params = {"marker": marker} if marker else {}
        body = ada_api.get("/v1/data/.my/c", params).json()
        seen += [f["filename"] for f in body["files"]]
        pages += 1
        marker = body.get("marker")
        if not marker:
            break
    assert seen == names and pages == 3
    bad = ada_api.get("/v1/data/.my/c", {"marker": "%%%"})
    assert bad.status_code == 400


def test_ranges(ada_api):
    make_collection(ada_api)
    put(ada_api, ".my/c/digits", b"0123456789")
    part = ada_api.get("/v1/data/.my/c/digits", HTTP_RANGE="bytes=2-5")
    assert part.status_code == 206 and read(part) == b"2345"
    assert part["Content-Range"] == "bytes 2-5/10" and part["Content-Length"] == "4"
    assert read(ada_api.get("/v1/data/.my/c/digits", HTTP_RANGE="bytes=7-")) == b"789"
    assert read(ada_api.get("/v1/data/.my/c/digits", HTTP_RANGE="bytes=-3")) == b"789"
    assert read(ada_api.get("/v1/data/.my/c/digits", HTTP_RANGE="bytes=8-100")) == b"89"
    outside = ada_api.get("/v1/data/.my/c/digits", HTTP_RANGE="bytes=10-")
    assert outside.status_code == 416 and outside["Content-Range"] == "bytes */10"
    several = ada_api.get("/v1/data/.my/c/digits", HTTP_RANGE="bytes=0-1,4-5")
    assert several.status_code == 200 and read(several) == b"0123456789"


def test_private_data_is_not_found_for_others_everywhere(ada_api, bob_api):
    make_collection(ada_api, "secret", acl={"read": []})
    put(ada_api, ".my/secret/f", b"x")
    for method, path in [
        ("get", "/v1/data/ada/secret"),
        ("get", "/v1/data/ada/secret/f"),
        ("get", "/v1/data/ada/secret/missing"),
        ("get", "/v1/data/ada/nothing"),
        ("delete", "/v1/data/ada/secret/f"),
        ("delete", "/v1/data/ada/secret"),
        ("patch", "/v1/data/ada/secret"),
    ]:
        response = getattr(bob_api, method)(path, {"acl": {"read": ["user://*"]}}, format="json")
        assert response.status_code == 404, (method, path, response.content)
    # The same answer for an existing private collection and one that does not exist.
    assert (
        bob_api.get("/v1/data/ada/secret").json()["error"]["message"]
        == "no such collection data://ada/secret"
    )
    assert put(bob_api, "ada/secret/new", b"x").status_code == 404
    assert bob_api.post("/v1/data/ada/secret", {"name": "d"}, format="json").status_code == 404
    assert bob_api.get("/v1/data/ada").json()["folders"] == []
    assert bob_api.head("/v1/data/ada/secret/f").status_code == 404


def test_public_data_is_read_only_for_others(ada_api, bob_api):
    make_collection(ada_api, "open", acl={"read": ["user://*"]})
    put(ada_api, ".my/open/f", b"x")
    assert read(bob_api.get("/v1/data/ada/open/f")) == b"x"
    refused = put(bob_api, "ada/open/f", b"y")
    assert refused.status_code == 403
    assert bob_api.delete("/v1/data/ada/open/f").status_code == 403
    assert (
        bob_api.patch("/v1/data/ada/open", {"acl": {"read": []}}, format="json").status_code == 403
    )


def test_billing_members_read_but_do_not_write(ada_api, bob, lab):
    from marketplace.accounts.models import Role
    from tests.factories import MembershipFactory

    MembershipFactory(team=lab, user=bob, role=Role.BILLING)
    make_collection(ada_api, owner="acme-lab", acl={"read": []})
    put(ada_api, "acme-lab/c/f", b"x")
    bob_api = api_for(bob)
    assert read(bob_api.get("/v1/data/acme-lab/c/f")) == b"x"
    assert put(bob_api, "acme-lab/c/f", b"y").status_code == 403


def test_acl_values(ada_api):
    make_collection(ada_api)
    for bad in [{"read": ["user://bob"]}, {"read": "user://*"}, "public", {"write": []}]:
        response = ada_api.patch("/v1/data/.my/c", {"acl": bad}, format="json")
        assert response.status_code == 400, bad
    put(ada_api, ".my/c/d/f", b"x")
    nested = ada_api.patch("/v1/data/.my/c/d", {"acl": {"read": []}}, format="json")
    assert nested.status_code == 400 and "collections" in nested.json()["error"]["message"]
    ok = ada_api.patch("/v1/data/.my/c", {"acl": {"read": ["user://*"]}}, format="json")
    assert ok.json() == {"acl": {"read": ["user://*"]}}


@pytest.mark.parametrize(
    "path",
    [
        ".my/c/../../bob/c/f",
        ".my/c/%2e%2e/%2e%2e/escape",
        ".my/c/..%2f..%2fescape",
        ".my/c//etc/passwd",
        ".my/c/./f",
        ".my/c/a%00b",
        ".my/c/" + "a" * 256,
        ".my/c/" + "é" * 128,
        ".my/c/evil%E2%80%AEtxt.exe",  # RIGHT-TO-LEFT OVERRIDE
        ".my/c/zero%E2%80%8Bwidth",  # ZERO WIDTH SPACE
        ".my/c/back%5Cslash",
        ".my/c/new%0Aline",
        ".my/" + "x" * 101,
        ".my/.hidden/f",
        "/etc/passwd",
        ".my/c/" + "/".join(["d"] * 40),
    ],
)
def test_path_attacks_are_refused_and_touch_nothing(ada_api, data_root, tmp_path, path):
    make_collection(ada_api)
    response = put(ada_api, path, b"pwned")
    assert response.status_code in (400, 404), (path, response.content)
    assert "error" in response.json()
    assert ada_api.get(f"/v1/data/{path}").status_code in (400, 404)
    assert files_under(data_root) == []
    assert not (tmp_path / "escape").exists()
    assert DataEntry.objects.count() == 0


def test_unicode_names_are_one_file_however_typed(
    ada_api, data_root, django_capture_on_commit_callbacks
):
    make_collection(ada_api)
    put(ada_api, ".my/c/caf%C3%A9", b"composed")  # é as one code point
    with django_capture_on_commit_callbacks(execute=True):  # the replaced blob goes
        put(ada_api, ".my/c/cafe%CC%81", b"decomposed")  # e + combining acute
    assert [f["filename"] for f in ada_api.get("/v1/data/.my/c").json()["files"]] == ["café"]
    assert read(ada_api.get("/v1/data/.my/c/caf%C3%A9")) == b"decomposed"
    # On disk only generated names: team/collection/hex.
    stored = files_under(data_root)
    assert len(stored) == 1 and stored[0].name.isalnum() and "caf" not in str(stored[0])


def test_file_size_limit(ada_api, settings, data_root):
    settings.DATA_MAX_FILE_BYTES = 10
    make_collection(ada_api)
    assert put(ada_api, ".my/c/ok", b"x" * 10).status_code == 200
    response = put(ada_api, ".my/c/big", b"x" * 11)
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "a hosted file is at most 10 bytes"
    assert len(files_under(data_root)) == 1


def test_file_size_limit_when_the_body_is_longer_than_declared(ada, settings, data_root):
    """A body read as a stream is counted, not trusted from its Content-Length."""
    from data import services
    from data.paths import parse_data_path
    from data.permissions import DataActor
    from marketplace.accounts.principals import Principal
    from marketplace.core.errors import RequestTooLargeError

    settings.DATA_MAX_FILE_BYTES = 1000
    actor = DataActor(Principal(ada))
    services.collection_create(actor=actor, path=parse_data_path(".my"), name="c")
    import io

    with pytest.raises(RequestTooLargeError):
        services.file_write(
            actor=actor,
            path=parse_data_path(".my/c/f"),
            source=io.BytesIO(b"x" * 5000),
            declared_size=None,
        )
    assert files_under(data_root) == [] and DataEntry.objects.count() == 0


def test_a_body_shorter_than_its_content_length_is_not_kept(ada, data_root):
    import io

    from data import services
    from data.paths import parse_data_path
    from data.permissions import DataActor
    from marketplace.accounts.principals import Principal
    from marketplace.core.errors import InputError

    actor = DataActor(Principal(ada))
    services.collection_create(actor=actor, path=parse_data_path(".my"), name="c")
    with pytest.raises(InputError, match="ended after 3 of its 10 bytes"):
        services.file_write(
            actor=actor,
            path=parse_data_path(".my/c/f"),
            source=io.BytesIO(b"abc"),
            declared_size=10,
        )
    assert files_under(data_root) == [] and DataEntry.objects.count() == 0


def test_quota_counts_uploads_overwrites_and_deletes(
    ada_api, ada, settings, data_root, django_capture_on_commit_callbacks
):
    settings.DATA_TEAM_QUOTA_BYTES = 100
    make_collection(ada_api)
    team = ada.personal_team
    assert put(ada_api, ".my/c/a", b"x" * 60).status_code == 200
    over = put(ada_api, ".my/c/b", b"x" * 41)
    assert over.status_code == 413
    assert over.json()["error"]["error_type"] == "QuotaExceededError"
    assert "quota of 100 bytes" in over.json()["error"]["message"]
    assert put(ada_api, ".my/c/b", b"x" * 40).status_code == 200
    # Overwriting gives back the old size first.
    with django_capture_on_commit_callbacks(execute=True):
        assert put(ada_api, ".my/c/a", b"y" * 50).status_code == 200
    assert TeamDataUsage.objects.get(team=team).bytes_used == 90
    assert selectors.bytes_indexed(team) == 90
    assert len(files_under(data_root)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert ada_api.delete("/v1/data/.my/c/a").json() == {"result": {"deleted": 1}}
    assert TeamDataUsage.objects.get(team=team).bytes_used == 40
    assert ada_api.delete("/v1/data/.my/c").status_code == 409  # not empty
    with django_capture_on_commit_callbacks(execute=True):
        response = ada_api.delete("/v1/data/.my/c?force=true")
    assert response.json() == {"result": {"deleted": 1}}
    assert TeamDataUsage.objects.get(team=team).bytes_used == 0
    assert files_under(data_root) == []


def test_a_team_quota_override(ada_api, ada, settings):
    settings.DATA_TEAM_QUOTA_BYTES = 0  # none by default
    make_collection(ada_api)
    TeamDataUsage.objects.update_or_create(team=ada.personal_team, defaults={"quota_bytes": 5})
    assert put(ada_api, ".my/c/a", b"123456").status_code == 413
    assert put(ada_api, ".my/c/a", b"12345").status_code == 200


def test_conflicts(ada_api):
    make_collection(ada_api)
    assert ada_api.post("/v1/data/.my", {"name": "c"}, format="json").status_code == 409
    put(ada_api, ".my/c/file", b"x")
    assert put(ada_api, ".my/c/file/below", b"x").status_code == 409
    ada_api.post("/v1/data/.my/c", {"name": "dir"}, format="json")
    assert put(ada_api, ".my/c/dir", b"x").status_code == 409
    assert ada_api.post("/v1/data/.my/c", {"name": "dir"}, format="json").status_code == 409
    response = ada_api.post("/v1/data/.my/c", {"name": "sub", "acl": {"read": []}}, format="json")
    assert response.status_code == 400


def test_deletes_are_audited(ada_api, ada):
    make_collection(ada_api)
    put(ada_api, ".my/c/d/f1", b"12")
    put(ada_api, ".my/c/d/f2", b"345")
    put(ada_api, ".my/c/g", b"6")
    assert ada_api.delete("/v1/data/.my/c/d?force=true").json() == {"result": {"deleted": 2}}
    assert ada_api.delete("/v1/data/.my/c?force=true").json() == {"result": {"deleted": 1}}
    events = {e.action: e for e in AuditEvent.objects.filter(team_slug="ada")}
    assert events["data.deleted"].target_repr == "data://ada/c/d"
    assert events["data.deleted"].before == {"files": 2, "bytes": 5, "kind": "dir"}
    assert events["collection.deleted"].target_repr == "data://ada/c"
    assert events["collection.created"].after == {"name": "c", "read": "my_algos"}
    assert events["collection.deleted"].key_prefix  # done with a key, recorded with it


def test_connectors_other_than_data_are_not_available(ada_api):
    response = ada_api.get("/v1/connector/s3/bucket/file")
    assert response.status_code == 404 and "connector" in response.json()["error"]["message"]
    assert ada_api.get("/v1/data/.algo/x").status_code == 404
