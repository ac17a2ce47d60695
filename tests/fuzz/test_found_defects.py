"""Fast regression tests for what the schemathesis run (test_api_schema.py) found: each is
one request, or one look at the served schema, checked against what the API really answers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from marketplace.accounts.models import Role
from marketplace.accounts.scopes import BILLING_READ
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key


@pytest.fixture
def schema(client, db) -> dict:  # the call endpoints' examples are read from the catalogue
    response = client.get("/v1/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def owner_client(db):
    user = UserFactory(username="ada", is_staff=True)
    team = TeamFactory(slug="acme")
    MembershipFactory(team=team, user=user, role=Role.OWNER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(user)[1]}")
    return client


@pytest.mark.parametrize(
    "path", ["/v1/teams/acme/usage", "/v1/teams/acme/earnings", "/v1/platform/usage"]
)
def test_options_of_a_csv_report_is_its_json_metadata_not_a_500(owner_client, path):
    # A browser's CORS preflight keeps the query string, ?format=csv included.
    response = owner_client.options(f"{path}?format=csv")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["name"]
    # The report itself is still CSV.
    assert owner_client.get(f"{path}?format=csv")["Content-Type"].startswith("text/csv")


def test_every_operation_documents_the_error_body(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["message", "error_type"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status in ("4XX", "503"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path)
    assert "504" in schema["paths"]["/v1/algo/{owner}/{name}"]["post"]["responses"]


def test_the_schema_says_how_to_send_a_key(schema, owner_client):
    scheme = schema["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert {"apiKey": []} in schema["paths"]["/v1/me"]["get"]["security"]
    assert owner_client.get("/v1/me").status_code == 200


@pytest.mark.parametrize(
    ("path", "item"),
    [
        ("/v1/teams", "TeamOutput"),
        ("/v1/teams/{team}/members", "MemberOutput"),
        ("/v1/keys", "KeyOutput"),
        ("/v1/teams/{team}/audit", "AuditEventOutput"),
        ("/v1/models/{owner}/{name}/versions", "VersionOutput"),
        ("/v1/models/{owner}/{name}/builds", "BuildOutput"),
    ],
)
def test_paginated_lists_are_documented_as_pages(schema, path, item):
    ref = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    page = schema["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    assert page["properties"]["results"]["items"] == {"$ref": f"#/components/schemas/{item}"}


def test_a_page_of_keys_is_what_the_schema_says(schema, owner_client):
    body = owner_client.get("/v1/keys").json()
    assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 1


def test_the_catalogue_search_is_documented_as_what_it_answers(schema, owner_client):
    ref = schema["paths"]["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"]
    documented = schema["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[1]]
    body = owner_client.get("/v1/models").json()
    assert set(body) == set(documented["properties"])


def test_revoking_a_key_is_documented_as_the_200_it_answers(schema, db):
    responses = schema["paths"]["/v1/keys/{key_id}"]["delete"]["responses"]
    assert "204" not in responses
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/KeyOutput"
    }
    user = UserFactory()
    _, secret = make_key(user)
    narrow, _ = make_key(user, scopes=[BILLING_READ])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    response = client.delete(f"/v1/keys/{narrow.pk}")
    assert response.status_code == 200 and response.json()["active"] is False


def test_raw_invoke_results_are_documented_in_every_content_type(schema):
    content = schema["paths"]["/v1/algo/{owner}/{name}"]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/plain", "application/octet-stream"} <= set(content)
    parameters = {
        p["name"]: p for p in schema["paths"]["/v1/algo/{owner}/{name}"]["post"]["parameters"]
    }
    assert parameters["timeout"]["schema"]["maximum"] == 3000
    assert parameters["output"]["allowEmptyValue"] is True
