"""Browsers on other sites may call the API with a key (the fetch snippet), never with the
visitor's cookies; pages are not opened to other origins."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

ORIGIN = "https://app.example.com"


def test_a_preflight_for_a_call_is_allowed(client):
    response = client.options(
        "/v1/algo/ada/toolbox/1.0.0",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-project",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    allowed = response["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "x-project"} <= {h.strip() for h in allowed.split(",")}
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response


def test_api_answers_expose_the_request_id_and_rate_limit_headers(client):
    response = client.get("/v1/models", HTTP_ORIGIN=ORIGIN)
    assert response["Access-Control-Allow-Origin"] == "*"
    exposed = response["Access-Control-Expose-Headers"].lower()
    assert "x-request-id" in exposed and "retry-after" in exposed


def test_pages_are_not_opened_to_other_origins(client):
    response = client.get("/explore/", HTTP_ORIGIN=ORIGIN)
    assert "Access-Control-Allow-Origin" not in response


def test_a_list_of_origins_narrows_it(client, settings):
    settings.CORS_ALLOW_ALL_ORIGINS = False
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    assert client.get("/v1/models", HTTP_ORIGIN=ORIGIN)["Access-Control-Allow-Origin"] == ORIGIN
    other = client.get("/v1/models", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other
