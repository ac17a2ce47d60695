"""Company sign-on end to end against a real OpenID Connect provider on loopback: the code
flow with PKCE, accounts made just in time and matched by subject, groups that become
memberships, leavers locked out, and every kind of bad answer refused with a clear page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from marketplace.accounts.models import ApiKey, ExternalIdentity, GroupMapping, Membership, User
from marketplace.accounts.tasks import recheck_signed_on_users
from marketplace.audit.models import AuditEvent
from tests.factories import DEFAULT_PASSWORD, TeamFactory, UserFactory, make_key

from .conftest import callback_path, provider_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def research(db):
    team = TeamFactory(slug="acme-research")
    GroupMapping.objects.create(group="research", team=team, role="member")
    GroupMapping.objects.create(group="research-leads", team=team, role="admin")
    return team


def actions(**filters) -> list[str]:
    return list(
        AuditEvent.objects.filter(**filters).order_by("at").values_list("action", flat=True)
    )


def test_a_first_sign_in_creates_the_account_and_its_memberships(provider, sign_on, research):
    subject = provider.person("ann.lee", groups=["research"], email="ann@acme.test")
    client = Client()
    response = sign_on(client, "ann.lee", next="/teams/acme-research/")

    assert response.status_code == 302 and response["Location"] == "/teams/acme-research/"
    user = User.objects.get(external_identity__subject=subject)
    assert user.username == "ann-lee" and user.email == "ann@acme.test"
    assert not user.has_usable_password()
    assert Membership.objects.get(user=user, team=research).role == "member"
    assert client.get("/teams/acme-research/").status_code == 200
    assert "sso.user_created" in actions(actor=user)
    assert "member.added" in actions(team=research)
    identity = ExternalIdentity.objects.get(user=user)
    assert identity.groups == ["research"] and identity.sealed_refresh_token
    assert "refresh" not in identity.sealed_refresh_token  # sealed, not the token itself

    # The next sign-in finds the same account by its subject.
    sign_on(Client(), "ann.lee")
    assert User.objects.filter(external_identity__issuer=provider.issuer).count() == 1


def test_an_account_is_never_matched_by_e_mail_alone(provider, sign_on, research):
    existing = UserFactory(username="bob", email="bob@acme.test")
    provider.person("bob", groups=["research"], email="bob@acme.test")
    sign_on(Client(), "bob")
    signed_on = User.objects.get(external_identity__isnull=False, email="bob@acme.test")
    assert signed_on.pk != existing.pk and signed_on.username.startswith("bob-")
    assert not Membership.objects.filter(user=existing, team=research).exists()


def test_a_group_change_takes_effect_at_the_next_sign_in(provider, sign_on, research):
    provider.person("cara", groups=["research"])
    sign_on(Client(), "cara")
    user = User.objects.get(username="cara")
    assert Membership.objects.get(user=user, team=research).role == "member"

    provider.person("cara", groups=["research", "research-leads"])
    sign_on(Client(), "cara")
    assert Membership.objects.get(user=user, team=research).role == "admin"

    other = TeamFactory(slug="acme-ops")
    GroupMapping.objects.create(group="ops", team=other, role="member")
    provider.person("cara", groups=["ops"])
    sign_on(Client(), "cara")
    assert list(Membership.objects.filter(user=user).values_list("team__slug", flat=True)) == [
        "acme-ops",
        "cara",
    ]
    assert actions(team=research) == ["member.added", "member.role_changed", "member.removed"]


def test_someone_in_no_mapped_group_gets_no_account(provider, sign_on, research):
    provider.person("dan", groups=["marketing"])
    response = sign_on(Client(), "dan")
    assert response.status_code == 403
    assert b"not in any group that has access" in response.content
    assert not User.objects.filter(email="dan@acme.test").exists()
    assert actions(action="sso.failed")


def test_the_authorization_request_carries_pkce_state_and_nonce(provider):
    start = Client().get("/accounts/sso/start/")
    query = parse_qs(urlsplit(start["Location"]).query)
    assert start["Location"].startswith(f"{provider.issuer}/authorize")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["response_type"] == ["code"]


def test_a_replayed_state_is_refused(provider, research):
    provider.person("eve", groups=["research"])
    client = Client()
    start = client.get("/accounts/sso/start/")
    callback = callback_path(provider_login(start["Location"], "eve"))
    assert client.get(callback).status_code == 302
    client.logout()
    replay = client.get(callback)
    assert replay.status_code == 400
    assert b"already used" in replay.content
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.filter(action="sso.failed").latest("at")
    assert event.after["reason"] == "state_mismatch"


def test_a_callback_without_a_start_is_refused(provider):
    response = Client().get("/accounts/sso/callback/?code=made-up&state=made-up")
    assert response.status_code == 400
    assert not User.objects.filter(external_identity__isnull=False).exists()


@pytest.mark.parametrize(
    "mode",
    ["tamper", "expired", "unknown_kid", "wrong_issuer", "wrong_audience", "wrong_nonce"],
)
def test_a_bad_id_token_creates_nothing(provider, sign_on, research, mode):
    provider.person("fay", groups=["research"])
    provider.spoil_next_token(mode)
    response = sign_on(Client(), "fay")
    assert response.status_code == 400, response.content[:500]
    assert b"could not be verified" in response.content
    assert not User.objects.filter(external_identity__isnull=False).exists()
    event = AuditEvent.objects.filter(action="sso.failed").latest("at")
    assert event.after["reason"].startswith("token_invalid")


def test_a_rotated_signing_key_is_fetched_again(provider, sign_on, research):
    provider.person("gil", groups=["research"])
    assert sign_on(Client(), "gil").status_code == 302
    provider.control("rotate-key")
    assert sign_on(Client(), "gil").status_code == 302


def test_a_provider_that_is_down_is_a_clear_page(provider, settings):
    settings.OIDC_ISSUER = "http://127.0.0.1:9/openid"  # nothing listens on the discard port
    response = Client().get("/accounts/sso/start/")
    assert response.status_code == 503
    assert b"cannot be reached" in response.content
    assert AuditEvent.objects.filter(action="sso.failed").latest("at").after["reason"] == (
        "provider_unreachable"
    )


def test_a_discovery_document_naming_another_issuer_is_refused(provider, settings):
    settings.OIDC_ISSUER = provider.issuer.replace("127.0.0.1", "localhost")
    response = Client().get("/accounts/sso/start/")
    assert response.status_code == 502
    assert b"misconfigured" in response.content


def test_an_open_redirect_in_next_is_ignored(provider, sign_on, research):
    provider.person("hal", groups=["research"])
    response = sign_on(Client(), "hal", next="https://evil.example/")
    assert response.status_code == 302 and response["Location"] == "/"


def test_without_a_provider_there_is_no_sign_on(client, settings):
    settings.OIDC_ISSUER = ""
    assert client.get("/accounts/sso/start/").status_code == 404
    assert b"Sign in with" not in client.get("/accounts/login/").content


# -- leavers ----------------------------------------------------------------------------------


def _signed_on_with_key(provider, sign_on, username, groups):
    provider.person(username, groups=groups)
    client = Client()
    sign_on(client, username)
    user = User.objects.get(username=username)
    _key, secret = make_key(user)
    return user, client, secret


def _me(secret) -> int:
    return Client().get("/v1/me", HTTP_AUTHORIZATION=f"Simple {secret}").status_code


def test_a_leaver_removed_from_every_group_is_locked_out_at_the_recheck(
    provider, sign_on, research
):
    user, session, secret = _signed_on_with_key(provider, sign_on, "ivy", ["research"])
    assert _me(secret) == 200 and session.get("/teams/").status_code == 200

    provider.person("ivy", groups=[])
    assert recheck_signed_on_users() == {"locked": 1}

    user.refresh_from_db()
    assert not user.is_active
    assert _me(secret) == 401
    assert session.get("/teams/").status_code == 302  # the session ended: back to log-in
    assert not Membership.objects.filter(user=user, team=research).exists()
    assert not ApiKey.objects.filter(created_by=user, revoked_at__isnull=True).exists()
    event = AuditEvent.objects.filter(action="sso.deprovisioned").latest("at")
    assert event.after["reason"] == "no longer in any mapped group"
    # Signing in again does not undo it.
    provider.person("ivy", groups=["research"])
    assert sign_on(Client(), "ivy").status_code == 403


def test_a_refused_refresh_locks_the_user_out(provider, sign_on, research):
    user, _session, secret = _signed_on_with_key(provider, sign_on, "jon", ["research"])
    provider.person("jon", groups=["research"], active=False)  # the provider revokes his tokens
    assert recheck_signed_on_users() == {"locked": 1}
    user.refresh_from_db()
    assert not user.is_active and _me(secret) == 401


def test_a_recheck_brings_groups_in_line(provider, sign_on, research):
    user, _session, secret = _signed_on_with_key(provider, sign_on, "kim", ["research"])
    provider.person("kim", groups=["research-leads"])
    assert recheck_signed_on_users() == {"synced": 1}
    assert Membership.objects.get(user=user, team=research).role == "admin"
    assert _me(secret) == 200


def test_a_provider_that_is_down_at_a_recheck_changes_nothing(
    provider, sign_on, research, settings
):
    user, _session, secret = _signed_on_with_key(provider, sign_on, "lea", ["research"])
    settings.OIDC_ISSUER = "http://127.0.0.1:9/openid"
    assert recheck_signed_on_users() == {"unreachable": 1}
    user.refresh_from_db()
    assert user.is_active and _me(secret) == 200


def test_an_admin_deprovisions_a_member_at_once(provider, sign_on, research, api_client):
    user, session, secret = _signed_on_with_key(provider, sign_on, "max", ["research"])
    admin = UserFactory(username="root-admin")
    Membership.objects.create(user=admin, team=research, role="admin")
    member = UserFactory(username="plain-member")
    Membership.objects.create(user=member, team=research, role="member")

    api_client.force_authenticate(member)
    url = "/v1/teams/acme-research/members/max/deprovision"
    assert api_client.post(url).status_code == 403
    api_client.force_authenticate(admin)
    assert (
        api_client.post("/v1/teams/acme-research/members/plain-member/deprovision").status_code
        == 400
    )
    assert api_client.post(url).status_code == 204

    user.refresh_from_db()
    assert not user.is_active and _me(secret) == 401
    assert session.get("/teams/").status_code == 302
    assert "sso.deprovisioned" in actions(team=research)


def test_a_team_that_requires_sign_on_refuses_passwords(provider, sign_on, research):
    password_user = UserFactory(username="pat")
    Membership.objects.create(user=password_user, team=research, role="owner")
    client = Client()
    client.force_login(password_user)
    refused = client.post(
        "/teams/acme-research/", {"action": "require_sso", "required": "1"}, follow=True
    )
    assert b"Sign in through company sign-on yourself" in refused.content

    provider.person("quinn", groups=["research-leads"])
    admin_client = Client()
    sign_on(admin_client, "quinn")
    admin_client.post("/teams/acme-research/", {"action": "require_sso", "required": "1"})
    research.refresh_from_db()
    assert research.require_sso

    login = Client().post("/accounts/login/", {"username": "pat", "password": DEFAULT_PASSWORD})
    assert login.status_code == 403
    assert b"sign in with Acme" in login.content
    assert "login.sso_required" in actions(team=research)


def test_group_mappings_are_managed_by_staff_only(provider, api_client, research):
    api_client.force_authenticate(UserFactory())
    assert api_client.get("/v1/sso/group-mappings").status_code == 403
    staff = UserFactory(is_staff=True)
    api_client.force_authenticate(staff)
    listed = api_client.get("/v1/sso/group-mappings").json()
    assert {(m["group"], m["team"], m["role"]) for m in listed} == {
        ("research", "acme-research", "member"),
        ("research-leads", "acme-research", "admin"),
    }
    created = api_client.post(
        "/v1/sso/group-mappings", {"group": "finance", "team": "acme-research", "role": "billing"}
    )
    assert created.status_code == 201
    assert (
        api_client.post(
            "/v1/sso/group-mappings",
            {"group": "finance", "team": "acme-research", "role": "member"},
        ).status_code
        == 409
    )
    assert (
        api_client.post(
            "/v1/sso/group-mappings", {"group": "x", "team": "no-such-team"}
        ).status_code
        == 404
    )
    assert api_client.delete(f"/v1/sso/group-mappings/{created.json()['id']}").status_code == 204
    assert actions(team=research)[-2:] == ["sso.mapping_created", "sso.mapping_deleted"]


def test_the_sign_on_groups_page_is_for_staff(provider, research):
    member = Client()
    member.force_login(UserFactory())
    assert member.get("/staff/sign-on/").status_code == 404
    staff = Client()
    staff.force_login(UserFactory(is_staff=True))
    page = staff.get("/staff/sign-on/")
    assert page.status_code == 200 and b"research-leads" in page.content
    staff.post("/staff/sign-on/", {"group": "finance", "team": "acme-research", "role": "billing"})
    mapping = GroupMapping.objects.get(group="finance")
    assert mapping.role == "billing"
    staff.post("/staff/sign-on/", {"action": "delete", "mapping": str(mapping.pk)})
    assert not GroupMapping.objects.filter(group="finance").exists()
    refused = staff.post(
        "/staff/sign-on/", {"group": "x", "team": "no-such-team", "role": "member"}, follow=True
    )
    assert b"no team named" in refused.content
