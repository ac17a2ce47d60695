"""Data scopes on API keys: data:read reads, data:write writes (and reads); a key without
either is refused with a 403 that names the scope, on every method, hosted data and
connectors alike. A browser session is not narrowed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from marketplace.accounts.scopes import FULL_ACCESS, normalise_scopes
from tests.data.conftest import api_for
from tests.data.test_api import make_collection, put, read


@pytest.fixture
def stocked(ada_api):
    make_collection(ada_api, "books")
    assert put(ada_api, ".my/books/a.txt", b"alpha").status_code == 200


def test_full_access_includes_both_data_scopes():
    assert {"data:read", "data:write"} <= set(FULL_ACCESS)
    assert normalise_scopes(["data:read", "data:write"]) == ["data:read", "data:write"]


@pytest.mark.parametrize("prefix", ["/v1/data", "/v1/connector/data"])
def test_a_key_without_data_scopes_is_refused(ada, stocked, prefix):
    api = api_for(ada, scopes=["algo://*", "catalog:write"])
    for response in (
        api.get(f"{prefix}/.my/books/a.txt"),
        api.get(f"{prefix}/.my/books"),
        api.get(f"{prefix}/.my"),
    ):
        assert response.status_code == 403
        assert "data:read or data:write scope" in response.json()["error"]["message"]
    head = api.head(f"{prefix}/.my/books/a.txt")
    assert head.status_code == 403 and "data:read" in head["X-Error-Message"]
    assert put(api, ".my/books/b.txt", b"x").status_code == 403
    assert api.delete(f"{prefix}/.my/books/a.txt").status_code == 403


def test_a_read_key_reads_and_does_not_write(ada, stocked):
    api = api_for(ada, scopes=["data:read"])
    assert read(api.get("/v1/data/.my/books/a.txt")) == b"alpha"
    assert api.head("/v1/data/.my/books/a.txt").status_code == 200
    refused = put(api, ".my/books/a.txt", b"overwritten")
    assert refused.status_code == 403
    assert "needs the data:write scope" in refused.json()["error"]["message"]
    assert api.post("/v1/data/.my", {"name": "more"}, format="json").status_code == 403
    assert api.patch("/v1/data/.my/books", {"acl": {"read": []}}, format="json").status_code == 403
    assert api.delete("/v1/data/.my/books?force=true").status_code == 403
    assert read(api.get("/v1/data/.my/books/a.txt")) == b"alpha"


def test_a_write_key_reads_and_writes(ada, stocked):
    api = api_for(ada, scopes=["data:write"])
    assert put(api, ".my/books/b.txt", b"beta").status_code == 200
    assert read(api.get("/v1/data/.my/books/b.txt")) == b"beta"
    assert api.delete("/v1/data/.my/books/b.txt").status_code == 200


def test_the_key_form_offers_data_access(ada, client):
    client.force_login(ada)
    response = client.post(
        reverse("accounts:key_list"),
        {
            "name": "reader",
            "team": "ada",
            "access": "restricted",
            "model_patterns": "",
            "data_access": "read",
        },
    )
    assert response.status_code == 201
    assert ada.api_keys.get(name="reader").scopes == ["data:read"]
