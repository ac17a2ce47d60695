"""Hosted data driven by the unchanged Algorithmia client (Algorithmia/datafile.py,
datadirectory.py, acl.py) against a live server."""

from __future__ import annotations

import json

import Algorithmia
import pytest
from Algorithmia.acl import Acl, AclType, ReadAcl
from Algorithmia.errors import DataApiError

from data.models import Collection
from data.models import ReadAcl as Read
from marketplace.accounts.models import Role
from marketplace.audit.models import AuditEvent
from tests.factories import make_key


def client_for(user, live_server, **options):
    _key, secret = make_key(user, **options)
    return Algorithmia.client(secret, live_server.url)


@pytest.fixture
def ada_client(ada, live_server):
    return client_for(ada, live_server)


@pytest.fixture
def bob_client(bob, live_server):
    return client_for(bob, live_server)


def test_files_round_trip(ada_client, tmp_path):
    ada_client.dir("data://.my/books").create()
    text = ada_client.file("data://.my/books/hello.txt")
    assert not text.exists()
    text.put("Hello, wörld")
    assert text.exists()
    assert text.getString() == "Hello, wörld"
    assert text.getBytes() == "Hello, wörld".encode()

    ada_client.file("data://ada/books/numbers.json").putJson({"n": [1, 2, 3]})
    assert ada_client.file("data://.my/books/numbers.json").getJson() == {"n": [1, 2, 3]}

    raw = bytes(range(256)) * 4000
    ada_client.file("data://.my/books/blob.bin").put(raw)
    assert ada_client.file("data://.my/books/blob.bin").getBytes() == raw

    local = tmp_path / "upload.csv"
    local.write_text("a,b\n1,2\n")
    ada_client.file("data://.my/books/table.csv").putFile(str(local))
    downloaded = ada_client.file("data://.my/books/table.csv").getFile(as_path=True)
    with open(downloaded) as handle:
        assert handle.read() == "a,b\n1,2\n"
    with ada_client.file("data://.my/books/table.csv").getFile() as handle:
        assert handle.read() == "a,b\n1,2\n"

    assert text.delete() is True
    assert not text.exists()
    with pytest.raises(DataApiError):
        text.getString()


def test_nested_directories_listing_and_attributes(ada_client, settings):
    settings.DATA_LIST_PAGE_SIZE = 2  # so the client must follow markers
    books = ada_client.dir("data://.my/books")
    books.create()
    assert books.exists()
    books.dir("novels").create()
    books.dir("novels").dir("old").create()
    for name in ("a.txt", "b.txt", "c.txt"):
        books.file(name).put(name * 3)
    books.file("poems/short/haiku.txt").put("an old silent pond")  # directories made on the way

    assert sorted(d.getName() for d in books.dirs()) == ["novels", "poems"]
    files = {f.getName(): f for f in books.files()}
    assert sorted(files) == ["a.txt", "b.txt", "c.txt"]
    assert files["a.txt"].size == 15 and files["a.txt"].last_modified is not None
    everything = [item.getName() for item in books.list()]
    assert sorted(everything) == ["a.txt", "b.txt", "c.txt", "novels", "poems"]
    assert [d.getName() for d in books.dir("novels").dirs()] == ["old"]
    assert ada_client.dir("data://.my/books/poems/short").exists()
    assert ada_client.file("data://.my/books/poems/short/haiku.txt").getString() == (
        "an old silent pond"
    )
    assert not ada_client.dir("data://.my/books/nothing").exists()


def test_collections_of_an_owner_and_the_connector_path(ada_client, live_server, ada):
    ada_client.dir("data://.my/one").create()
    ada_client.dir("data://.my/two").create(ReadAcl.public)
    assert sorted(d.getName() for d in ada_client.dir("data://ada").dirs()) == ["one", "two"]
    ada_client.file("data://.my/one/x.txt").put("x")
    import requests

    _key, secret = make_key(ada)
    response = requests.get(
        f"{live_server.url}/v1/connector/data/.my/one/x.txt",
        headers={"Authorization": secret},
        timeout=30,
    )
    assert response.status_code == 200 and response.content == b"x"


def test_delete_directories(ada_client):
    books = ada_client.dir("data://.my/books")
    books.create()
    books.file("deep/er/file.txt").put("x")
    with pytest.raises(DataApiError, match="not empty"):
        books.dir("deep").delete()
    assert books.dir("deep").delete(force=True) is True
    assert not books.dir("deep").exists()
    assert not ada_client.file("data://.my/books/deep/er/file.txt").exists()
    empty = books.dir("empty")
    empty.create()
    assert empty.delete() is True
    books.file("left.txt").put("x")
    with pytest.raises(DataApiError, match="not empty"):
        books.delete()
    assert books.delete(force=True) is True
    assert not books.exists()


def test_permissions(ada_client, bob_client, ada):
    ada_client.dir("data://.my/shared").create(ReadAcl.public)
    ada_client.dir("data://.my/secret").create(ReadAcl.private)
    ada_client.dir("data://.my/default").create()
    for name in ("shared", "secret", "default"):
        ada_client.file(f"data://ada/{name}/f.txt").put(name)

    assert ada_client.dir("data://.my/shared").get_permissions().read_acl == AclType.public
    assert ada_client.dir("data://.my/secret").get_permissions().read_acl == AclType.private
    assert ada_client.dir("data://.my/default").get_permissions().read_acl == AclType.my_algos

    assert bob_client.file("data://ada/shared/f.txt").getString() == "shared"
    for name in ("secret", "default"):
        assert not bob_client.file(f"data://ada/{name}/f.txt").exists()
        assert not bob_client.dir(f"data://ada/{name}").exists()
        with pytest.raises(DataApiError):
            bob_client.file(f"data://ada/{name}/f.txt").getString()
    assert [d.getName() for d in bob_client.dir("data://ada").dirs()] == ["shared"]
    # Reading a public collection does not allow writing to it.
    with pytest.raises(Exception):  # noqa: B017 - the client raises a bare Exception for 403
        bob_client.file("data://ada/shared/f.txt").put("overwritten")
    assert ada_client.file("data://ada/shared/f.txt").getString() == "shared"

    ada_client.dir("data://.my/secret").update_permissions(ReadAcl.public)
    assert bob_client.file("data://ada/secret/f.txt").getString() == "secret"
    ada_client.dir("data://.my/shared").update_permissions(Acl(AclType.private))
    assert not bob_client.file("data://ada/shared/f.txt").exists()
    assert Collection.objects.get(name="shared").read_acl == Read.PRIVATE

    actions = list(
        AuditEvent.objects.filter(team_slug="ada").order_by("at").values_list("action", flat=True)
    )
    assert actions.count("collection.created") == 3
    assert actions.count("collection.acl_changed") == 2


def test_team_collections_and_team_keys(ada, bob, lab, live_server):
    lab.memberships.filter(user=ada).update(role=Role.ADMIN)
    member = client_for(ada, live_server)
    member.dir("data://acme-lab/models").create(ReadAcl.private)
    member.file("data://acme-lab/models/weights.bin").put(b"\x00\x01")
    team_key = client_for(ada, live_server, team=lab)
    assert team_key.file("data://.my/models/weights.bin").getBytes() == b"\x00\x01"
    outsider = client_for(bob, live_server)
    assert not outsider.file("data://acme-lab/models/weights.bin").exists()
    # The client's create() raises a bare Exception for any refusal (client.py: postJsonHelper).
    with pytest.raises(Exception, match="403"):
        outsider.dir("data://acme-lab/other").create()


def test_errors_reach_the_client_as_data_api_errors(ada_client):
    with pytest.raises(DataApiError, match="no such collection"):
        ada_client.dir("data://.my/missing").delete()
    with pytest.raises(Exception, match="404"):
        ada_client.dir("data://.my/missing/sub").create()
    body = json.dumps({"a": 1})
    ada_client.dir("data://.my/c").create()
    ada_client.file("data://.my/c/a.json").put(body)
    assert ada_client.file("data://.my/c/a.json").getJson() == {"a": 1}
