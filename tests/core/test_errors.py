import pytest
from django.test import Client

from tests.conftest import assert_error_shape

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_a_json_404(client):
    assert_error_shape(client.get("/v1/no/such/thing"), 404, "NotFoundError")


def test_unauthenticated_is_a_json_401(client):
    assert_error_shape(client.get("/v1/me"), 401, "AuthenticationError")


def test_wrong_method_is_a_json_405(key_client):
    error = assert_error_shape(key_client.put("/v1/me", {}), 405, "MethodNotAllowedError")
    assert "PUT" in error["message"]


def test_django_405_from_a_plain_view_is_shaped(client):
    response = client.post("/v1/schema")
    assert response.status_code in (401, 405)
    assert_error_shape(response, response.status_code)


def test_malformed_json_is_a_400(key_client):
    response = key_client.generic("POST", "/v1/teams", "{not json", content_type="application/json")
    assert_error_shape(response, 400, "InputError")


def test_validation_error_names_the_field(key_client):
    error = assert_error_shape(key_client.post("/v1/teams", {}, format="json"), 400, "InputError")
    assert "slug" in error["message"]


def test_bad_host_header_under_api_is_shaped(client):
    response = client.get("/v1/me", HTTP_HOST="evil.example")
    assert_error_shape(response, 400)


def test_csrf_failure_under_api_is_shaped(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert_error_shape(client.post("/v1/teams", {"slug": "abc"}), 403, "AuthorizationError")


@pytest.mark.urls("tests.core.urls_failing")
def test_crash_under_api_is_a_json_500():
    client = Client(raise_request_exception=False)
    error = assert_error_shape(client.get("/v1/crash"), 500, "ServerError")
    assert "a bug" not in error["message"]


@pytest.mark.urls("tests.core.urls_failing")
def test_crash_on_a_page_is_an_html_500():
    response = Client(raise_request_exception=False).get("/crash")
    assert response.status_code == 500
    assert b"<html" in response.content.lower()


def test_unknown_page_is_an_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and b"<html" in response.content.lower()


def test_schema_generates_and_docs_render(client):
    schema = client.get("/v1/schema", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/v1/keys" in paths and "/v1/teams/{team}/members" in paths
    docs = client.get("/v1/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
