"""Connectors to a team's own bucket, for real: moto's standalone S3 server on loopback
(tests/data/conftest.py: s3_endpoint), driven by the unchanged Algorithmia client through
`client.file("s3://...")` and by the raw API. No client is mocked."""

from __future__ import annotations

import logging

import Algorithmia
import boto3
import pytest
import requests
from Algorithmia.errors import DataApiError
from django.core.management import call_command

from data import connector_services
from data.connector_services import ConnectorInput
from data.models import Connector
from data.secrets import decrypt_secret, encrypt_secret, key_from_secret_key
from marketplace.accounts.models import Role
from marketplace.accounts.principals import Principal
from marketplace.audit.models import AuditEvent
from marketplace.core.errors import InputError
from tests.data.conftest import CREDENTIALS, api_for
from tests.factories import MembershipFactory, TeamFactory, make_key

BUCKET = "team-bucket"
SECRET = "s3cr3t-Zq8wTnVfK2pLm9RxYbC4"  # what moto accepts is any secret; this one is ours


@pytest.fixture
def team_bucket(s3_endpoint):
    s3 = boto3.resource("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = s3.Bucket(BUCKET)
    if bucket.creation_date is None:
        bucket.create()
    bucket.objects.all().delete()
    return bucket


@pytest.fixture
def loopback_allowed(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    return settings


@pytest.fixture
def admin_of_lab(ada, lab):
    lab.memberships.filter(user=ada).update(role=Role.ADMIN)
    return ada


@pytest.fixture
def connector(admin_of_lab, lab, s3_endpoint, team_bucket, loopback_allowed):
    return connector_services.connector_create(
        principal=Principal(admin_of_lab),
        team=lab,
        given=ConnectorInput(
            name="ext",
            bucket=BUCKET,
            endpoint_url=s3_endpoint,
            prefix="shared/",
            access_key_id="testing",
        ),
        secret=SECRET,
    )


def keys_in(bucket) -> list[str]:
    return sorted(item.key for item in bucket.objects.all())


def test_the_client_reads_and_writes_through_a_connector(
    connector, ada, lab, live_server, team_bucket, tmp_path
):
    _key, secret = make_key(ada, team=lab)
    client = Algorithmia.client(secret, live_server.url)
    hello = client.file("s3://ext/docs/hello.txt")
    assert not hello.exists()
    hello.put("Hello, wörld")
    assert hello.exists()
    assert hello.getString() == "Hello, wörld"
    assert keys_in(team_bucket) == ["shared/docs/hello.txt"]  # under the connector's prefix

    client.file("s3://ext/docs/n.json").putJson({"n": [1, 2]})
    assert client.file("s3://ext/docs/n.json").getJson() == {"n": [1, 2]}
    raw = bytes(range(256)) * 4000
    client.file("s3://ext/blob.bin").put(raw)
    assert client.file("s3://ext/blob.bin").getBytes() == raw
    local = tmp_path / "t.csv"
    local.write_text("a,b\n")
    client.file("s3://ext/docs/t.csv").putFile(str(local))
    with client.file("s3://ext/docs/t.csv").getFile() as handle:
        assert handle.read() == "a,b\n"

    client.dir("s3://ext/empty").create()
    assert client.dir("s3://ext/empty").exists()
    top = client.dir("s3://ext")
    assert sorted(d.getName() for d in top.dirs()) == ["docs", "empty"]
    assert [f.getName() for f in top.files()] == ["blob.bin"]
    assert sorted(f.getName() for f in client.dir("s3://ext/docs").files()) == [
        "hello.txt",
        "n.json",
        "t.csv",
    ]

    ranged = requests.get(
        f"{live_server.url}/v1/connector/s3/ext/docs/hello.txt",
        headers={"Authorization": secret, "Range": "bytes=0-4"},
        timeout=30,
    )
    assert ranged.status_code == 206 and ranged.content == b"Hello"

    assert hello.delete() is True
    assert not hello.exists()
    with pytest.raises(DataApiError, match="not empty"):
        client.dir("s3://ext/docs").delete()
    assert client.dir("s3://ext/docs").delete(force=True)
    assert keys_in(team_bucket) == ["shared/blob.bin", "shared/empty/"]


def test_listing_pages_follow_markers(connector, ada, lab, settings, team_bucket):
    settings.DATA_LIST_PAGE_SIZE = 2
    api = api_for(ada, team=lab)
    for name in "abcde":
        team_bucket.put_object(Key=f"shared/many/{name}", Body=name.encode())
    seen, marker = [], None
    while True:
        page = api.get("/v1/data/s3://ext/many", {"marker": marker} if marker else {}).json()
        seen += [f["filename"] for f in page["files"]]
        marker = page.get("marker")
        if not marker:
            break
    assert seen == list("abcde")
    assert api.get("/v1/data/s3://ext/many", {"marker": "bm90LWEtdG9rZW4"}).status_code in (
        400,
        502,
    )


def test_size_limit(connector, ada, lab, settings, team_bucket):
    settings.DATA_MAX_FILE_BYTES = 100
    api = api_for(ada, team=lab)
    response = api.generic(
        "PUT", "/v1/data/s3://ext/big", b"x" * 101, content_type="application/octet-stream"
    )
    assert (
        response.status_code == 413 and "at most 100 bytes" in response.json()["error"]["message"]
    )
    assert keys_in(team_bucket) == []


def test_other_namespaces_do_not_see_the_connector(connector, bob, team_bucket):
    team_bucket.put_object(Key="shared/x.txt", Body=b"private")
    bobs_team = TeamFactory(slug="bobs-lab")
    MembershipFactory(team=bobs_team, user=bob, role=Role.OWNER)
    for api in (api_for(bob), api_for(bob, team=bobs_team)):
        for url in ("/v1/data/s3://ext/x.txt", "/v1/connector/s3/ext/x.txt", "/v1/data/s3://ext"):
            response = api.get(url)
            assert response.status_code == 404
            assert "no such connector" in response.json()["error"]["message"]
        assert api.head("/v1/data/s3://ext/x.txt").status_code == 404
        put = api.generic("PUT", "/v1/data/s3://ext/x.txt", b"overwritten")
        assert put.status_code == 404
        assert api.delete("/v1/data/s3://ext/x.txt").status_code == 404
    assert team_bucket.Object("shared/x.txt").get()["Body"].read() == b"private"


def test_a_key_without_data_scope_is_refused(connector, ada, lab, team_bucket):
    api = api_for(ada, team=lab, scopes=["algo://*"])
    response = api.get("/v1/data/s3://ext")
    assert response.status_code == 403 and "data:read" in response.json()["error"]["message"]
    reader = api_for(ada, team=lab, scopes=["data:read"])
    assert reader.get("/v1/data/s3://ext").status_code == 200
    assert reader.generic("PUT", "/v1/data/s3://ext/y", b"y").status_code == 403
    assert keys_in(team_bucket) == []


@pytest.mark.parametrize(
    "path",
    [
        "s3://ext/../outside.txt",
        "s3://ext/a/../../outside.txt",
        "s3://ext/./x",
        "s3://ext/a//b",
        "s3://ext/a\\..\\b",
        "s3://ext/%2e%2e/outside.txt",
        "s3://ext/a%00b",
    ],
)
def test_path_attacks_never_reach_the_bucket(connector, ada, lab, team_bucket, path):
    team_bucket.put_object(Key="outside.txt", Body=b"outside the prefix")
    api = api_for(ada, team=lab)
    for response in (
        api.get(f"/v1/data/{path}"),
        api.generic("PUT", f"/v1/data/{path}", b"evil"),
        api.delete(f"/v1/data/{path}"),
    ):
        assert response.status_code in (400, 404), response.content
    assert keys_in(team_bucket) == ["outside.txt"]
    assert team_bucket.Object("outside.txt").get()["Body"].read() == b"outside the prefix"


def test_an_endpoint_the_outbound_policy_forbids(admin_of_lab, lab, s3_endpoint, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    for endpoint in (
        s3_endpoint,
        "http://169.254.169.254",
        "http://10.0.0.8:9000",
        "http://localhost:9000",
        "http://user:pw@s3.example.com",
        "ftp://s3.example.com",
        "https://s3.example.com/path",
    ):
        with pytest.raises(InputError) as refused:
            connector_services.connector_create(
                principal=Principal(admin_of_lab),
                team=lab,
                given=ConnectorInput(
                    name="ext", bucket=BUCKET, endpoint_url=endpoint, access_key_id="testing"
                ),
                secret=SECRET,
            )
        assert refused.value.fields == {"endpoint_url": [refused.value.fields["endpoint_url"][0]]}
    assert not Connector.objects.exists()


def test_a_connector_whose_endpoint_became_forbidden_is_not_used(
    connector, ada, lab, settings, team_bucket
):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    api = api_for(ada, team=lab)
    response = api.get("/v1/data/s3://ext")
    assert response.status_code == 403
    assert response.json()["error"]["error_type"] == "ConnectorRefusedError"
    assert "loopback" in response.json()["error"]["message"]
    assert not AuditEvent.objects.filter(action="connector.used").exists()


def test_only_admins_manage_connectors(ada, lab, s3_endpoint, loopback_allowed):
    with pytest.raises(Exception, match="owners and admins"):
        connector_services.connector_create(
            principal=Principal(ada),  # a plain member
            team=lab,
            given=ConnectorInput(
                name="ext", bucket=BUCKET, endpoint_url=s3_endpoint, access_key_id="testing"
            ),
            secret=SECRET,
        )


def test_the_secret_is_encrypted_audited_in_use_and_never_shown(
    connector, admin_of_lab, ada, lab, live_server, caplog, s3_endpoint, team_bucket
):
    caplog.set_level(logging.DEBUG)
    stored = Connector.objects.get(pk=connector.pk)
    assert (
        SECRET not in stored.secret_encrypted and decrypt_secret(stored.secret_encrypted) == SECRET
    )
    assert stored.secret_hint == "…" + SECRET[-4:]

    _key, key_secret = make_key(ada, team=lab)
    client = Algorithmia.client(key_secret, live_server.url)
    client.file("s3://ext/a.txt").put("a")
    assert client.file("s3://ext/a.txt").getString() == "a"
    answers = [
        requests.get(
            f"{live_server.url}/v1/data/s3://ext", headers={"Authorization": key_secret}, timeout=30
        ),
        requests.get(
            f"{live_server.url}/v1/data/s3://nope",
            headers={"Authorization": key_secret},
            timeout=30,
        ),
    ]
    connector_services.connector_update(
        principal=Principal(admin_of_lab),
        connector=stored,
        given=ConnectorInput(
            name="ext", bucket=BUCKET, endpoint_url=s3_endpoint, access_key_id="testing"
        ),
        secret="",
    )
    assert decrypt_secret(Connector.objects.get(pk=connector.pk).secret_encrypted) == SECRET

    events = list(AuditEvent.objects.filter(action__startswith="connector."))
    actions = [event.action for event in events]
    assert actions.count("connector.created") == 1 and actions.count("connector.changed") == 1
    assert actions.count("connector.used") >= 3
    used = [e for e in events if e.action == "connector.used"]
    assert all(e.key_prefix and e.team_id == lab.pk for e in used)
    everything = " ".join(
        [repr((e.before, e.after, e.target_repr)) for e in events]
        + [answer.text for answer in answers]
        + [caplog.text]
    )
    assert SECRET not in everything and SECRET[:12] not in everything

    connector_services.connector_delete(principal=Principal(admin_of_lab), connector=stored)
    assert AuditEvent.objects.filter(action="connector.deleted").count() == 1


def test_secret_keys_rotate(connector, settings):
    old = key_from_secret_key(settings.SECRET_KEY).decode()
    new = "8oFh1Yq0mbq9o5ZkqYp7m3u6mJq0c2u5cQxZz1H6n9A="
    settings.DATA_CONNECTOR_SECRET_KEYS = [new, old]
    call_command("rotate_connector_secrets")
    settings.DATA_CONNECTOR_SECRET_KEYS = [new]
    assert decrypt_secret(Connector.objects.get(pk=connector.pk).secret_encrypted) == SECRET
    assert encrypt_secret("x") != encrypt_secret("x")  # a fresh IV each time
