from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.accounts.models import ApiKey
from marketplace.accounts.scopes import FULL_ACCESS
from tests.conftest import assert_error_shape
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key

pytestmark = pytest.mark.django_db


def _client_with(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def test_secret_is_shown_once_and_only_its_hash_is_stored(key_client, user):
    response = key_client.post(
        "/v1/keys",
        {"name": "ci", "scopes": ["algo://acme/*"], "project": "search"},
        format="json",
    )
    assert response.status_code == 201, response.content
    secret = response.json()["secret"]
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(value) for value in ApiKey.objects.filter(pk=key.pk).values().first().values()]
    assert not any(secret in value for value in stored)
    assert secret.startswith(key.prefix) and len(secret) > len(key.prefix) + 20

    listed = key_client.get("/v1/keys").content.decode()
    detail = key_client.get(f"/v1/keys/{key.pk}").content.decode()
    assert key.prefix in listed and secret not in listed
    assert "secret" not in detail and secret not in detail
    assert secret[len(key.prefix) :] not in listed


def test_three_header_forms_authenticate(user_key, user):
    _key, secret = user_key
    for header in (f"Simple {secret}", f"Bearer {secret}", secret, f"simple {secret}"):
        response = _client_with(header).get("/v1/me")
        assert response.status_code == 200, (header, response.content)
        assert response.json()["username"] == user.username
        assert response.json()["key"]["prefix"] == _key.prefix


@pytest.mark.parametrize(
    "header",
    ["Simple mk_nope", "Bearer mk_" + "x" * 40, "garbage", "Simple a b c", "Token abc"],
)
def test_invalid_keys_get_401_with_the_documented_body(header, user_key):
    response = _client_with(header).get("/v1/me")
    error = assert_error_shape(response, 401, "AuthenticationError")
    assert "key" in error["message"].lower()
    assert response["WWW-Authenticate"]


def test_a_wrong_secret_with_a_real_prefix_is_refused(user_key):
    _key, secret = user_key
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert_error_shape(_client_with(f"Simple {forged}").get("/v1/me"), 401)


def test_revoked_key_gets_401(key_client, user):
    other, secret = make_key(user, name="to revoke")
    assert _client_with(f"Simple {secret}").get("/v1/me").status_code == 200
    response = key_client.delete(f"/v1/keys/{other.pk}")
    assert response.status_code == 200 and response.json()["revoked_at"]
    error = assert_error_shape(_client_with(f"Simple {secret}").get("/v1/me"), 401)
    assert "revoked" in error["message"]


def test_expired_key_gets_401(user):
    key, secret = make_key(user, expires_at=timezone.now() + timedelta(days=1))
    assert _client_with(f"Bearer {secret}").get("/v1/me").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    error = assert_error_shape(_client_with(f"Bearer {secret}").get("/v1/me"), 401)
    assert "expired" in error["message"]


def test_key_of_disabled_user_gets_401(user_key, user):
    user.is_active = False
    user.save()
    assert_error_shape(_client_with(f"Simple {user_key[1]}").get("/v1/me"), 401)


def test_new_keys_have_no_scopes_by_default(key_client):
    response = key_client.post("/v1/keys", {"name": "restricted"}, format="json")
    assert response.status_code == 201
    assert response.json()["scopes"] == []


def test_a_key_without_the_scope_gets_403(user):
    _key, secret = make_key(user, scopes=["algo://acme/*"])
    client = _client_with(f"Simple {secret}")
    assert client.get("/v1/me").status_code == 200
    response = client.post(
        "/v1/keys", {"name": "escalate", "scopes": list(FULL_ACCESS)}, format="json"
    )
    assert_error_shape(response, 403, "AuthorizationError")
    assert ApiKey.objects.filter(name="escalate").count() == 0


def test_a_team_key_cannot_manage_keys_even_with_full_scopes(user):
    team = TeamFactory()
    MembershipFactory(team=team, user=user, role="admin")
    _key, secret = make_key(user, team=team)
    response = _client_with(f"Simple {secret}").post("/v1/keys", {"name": "x"}, format="json")
    assert_error_shape(response, 403, "AuthorizationError")


def test_invalid_scope_is_a_400_naming_the_field(key_client):
    response = key_client.post(
        "/v1/keys", {"name": "x", "scopes": ["algo://Ac me/*"]}, format="json"
    )
    error = assert_error_shape(response, 400, "InputError")
    assert error["message"].startswith("scopes:")


def test_keys_for_a_team_need_an_admin(user):
    team = TeamFactory()
    MembershipFactory(team=team, user=user, role="member")
    client = APIClient()
    client.force_authenticate(user)
    response = client.post("/v1/keys", {"name": "x", "team": team.slug}, format="json")
    assert_error_shape(response, 403)
    MembershipFactory(team=TeamFactory(slug="other-team"), user=UserFactory(), role="owner")
    response = client.post("/v1/keys", {"name": "x", "team": "other-team"}, format="json")
    assert_error_shape(response, 404)


def test_others_cannot_see_or_revoke_my_key(user_key):
    key, _secret = user_key
    stranger_client = _client_with(f"Simple {make_key(UserFactory())[1]}")
    assert_error_shape(stranger_client.get(f"/v1/keys/{key.pk}"), 404)
    assert_error_shape(stranger_client.delete(f"/v1/keys/{key.pk}"), 404)
    assert_error_shape(stranger_client.get("/v1/keys/not-a-uuid"), 404)
    key.refresh_from_db()
    assert key.revoked_at is None


def test_team_admin_sees_and_revokes_team_keys_made_by_others(user):
    team = TeamFactory()
    MembershipFactory(team=team, user=user, role="owner")
    colleague = UserFactory()
    MembershipFactory(team=team, user=colleague, role="admin")
    key, _ = make_key(colleague, team=team)
    client = APIClient()
    client.force_authenticate(user)
    assert str(key.pk) in {k["id"] for k in client.get("/v1/keys").json()["results"]}
    assert client.delete(f"/v1/keys/{key.pk}").status_code == 200


def test_last_used_is_recorded(user_key):
    key, secret = user_key
    assert key.last_used_at is None
    _client_with(secret).get("/v1/me")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_create_api_key_command_prints_only_the_secret(user, capsys):
    team = TeamFactory()
    MembershipFactory(team=team, user=user, role="admin")
    call_command(
        "create_api_key",
        "--user",
        user.username,
        "--team",
        team.slug,
        "--scope",
        "algo://acme/*",
        "--scope",
        "billing:read",
    )
    out = capsys.readouterr().out
    secret = out.strip()
    assert out == secret + "\n"
    key = ApiKey.objects.get(secret_hash=hashlib.sha256(secret.encode()).hexdigest())
    assert key.team == team and key.scopes == ["algo://acme/*", "billing:read"]
    assert _client_with(secret).get("/v1/me").status_code == 200


def test_create_api_key_command_defaults_to_full_access(user, capsys):
    call_command("create_api_key", "--user", user.username)
    secret = capsys.readouterr().out.strip()
    key = ApiKey.objects.get(secret_hash=hashlib.sha256(secret.encode()).hexdigest())
    assert key.team.slug == user.username and key.scopes == list(FULL_ACCESS)


def test_create_api_key_command_errors_clearly(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user named"):
        call_command("create_api_key", "--user", "ghost")
