"""One test per audited action, each through the path a user takes (a page with a session,
the API with a key), checking who, through what, from where, on what, and the change."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog.models import Model, Visibility
from marketplace.accounts import services as account_services
from marketplace.accounts.models import ApiKey, Membership, Role
from marketplace.audit.models import AuditEvent
from tests.audit.conftest import (
    CLIENT_IP,
    USER_AGENT,
    key_api_client,
    row_text,
    session_api_client,
    session_client,
    the_event,
)
from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, TeamFactory, UserFactory
from tests.gateway.factories import InvocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    """A team with an owner (ada) and a member (bob)."""
    team = TeamFactory(slug="acme")
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    MembershipFactory(team=team, user=ada, role=Role.OWNER)
    MembershipFactory(team=team, user=bob, role=Role.MEMBER)
    return team, ada, bob


def assert_actor(event: AuditEvent, user, *, via: str, key: ApiKey | None = None) -> None:
    assert event.actor == user and event.actor_name == user.username
    assert event.via == via
    assert event.key_prefix == (key.prefix if key else "")
    assert event.ip == CLIENT_IP
    assert event.user_agent == USER_AGENT
    assert event.request_id  # the request's X-Request-ID


# -- keys ----------------------------------------------------------------------------------------


def test_key_created_from_the_page_records_the_session_and_never_the_secret(acme):
    team, ada, _bob = acme
    response = session_client(ada).post(
        "/keys/",
        {"name": "ci", "team": "acme", "access": "full", "project": "nightly"},
    )
    assert response.status_code == 201, response.content
    key = ApiKey.objects.get(name="ci")
    event = the_event("key.created")
    assert_actor(event, ada, via="session")
    assert response["X-Request-ID"] == event.request_id
    assert (event.team, event.team_slug) == (team, "acme")
    assert (event.target_type, event.target_id) == ("api_key", str(key.pk))
    assert event.before is None
    assert event.after["prefix"] == key.prefix and event.after["project"] == "nightly"
    secret = response.context["created"]["secret"]
    assert secret not in row_text(event) and key.secret_hash not in row_text(event)


def test_key_created_with_a_key_records_that_key_and_its_prefix(acme):
    _team, ada, _bob = acme
    client, acting_key = key_api_client(ada)
    response = client.post("/v1/keys", {"name": "deploy", "scopes": []}, format="json")
    assert response.status_code == 201, response.content
    created = ApiKey.objects.get(pk=response.json()["id"])
    event = AuditEvent.objects.get(action="key.created", target_id=str(created.pk))
    assert_actor(event, ada, via="key", key=acting_key)
    assert event.team.slug == "ada"  # a personal key: ada's own namespace
    assert response.json()["secret"] not in row_text(event)


def test_key_revoked(acme):
    team, ada, _bob = acme
    client, acting_key = key_api_client(ada)
    victim, _secret = account_services.api_key_create(
        actor=ada, team=team, name="old", scopes=["algo://acme/*"]
    )
    response = client.delete(f"/v1/keys/{victim.pk}")
    assert response.status_code == 200, response.content
    event = the_event("key.revoked")
    assert_actor(event, ada, via="key", key=acting_key)
    assert event.team == team
    assert (event.target_type, event.target_id) == ("api_key", str(victim.pk))
    assert event.before == {"revoked_at": None}
    victim.refresh_from_db()
    assert event.after["revoked_at"].startswith(victim.revoked_at.isoformat()[:19])
    client.delete(f"/v1/keys/{victim.pk}")  # revoking again changes nothing: no new event
    assert AuditEvent.objects.filter(action="key.revoked").count() == 1


# -- members -------------------------------------------------------------------------------------


def test_member_added(acme):
    team, ada, _bob = acme
    UserFactory(username="cleo")
    response = session_api_client(ada).post(
        "/v1/teams/acme/members", {"username": "cleo", "role": "admin"}, format="json"
    )
    assert response.status_code == 201, response.content
    event = the_event("member.added")
    assert_actor(event, ada, via="session")
    assert event.team == team and event.target_type == "membership"
    assert event.target_id == str(Membership.objects.get(team=team, user__username="cleo").pk)
    assert event.before is None and event.after == {"username": "cleo", "role": "admin"}


def test_member_role_changed_on_the_team_page(acme):
    team, ada, _bob = acme
    response = session_client(ada).post(
        "/teams/acme/", {"action": "change_role", "username": "bob", "role": "admin"}
    )
    assert response.status_code == 302
    event = the_event("member.role_changed")
    assert_actor(event, ada, via="session")
    assert event.team == team and "bob" in event.target_repr
    assert event.before == {"username": "bob", "role": "member"}
    assert event.after == {"username": "bob", "role": "admin"}


def test_member_removed_with_a_key(acme):
    team, ada, _bob = acme
    client, acting_key = key_api_client(ada)
    membership = Membership.objects.get(team=team, user__username="bob")
    response = client.delete("/v1/teams/acme/members/bob")
    assert response.status_code == 204, response.content
    event = the_event("member.removed")
    assert_actor(event, ada, via="key", key=acting_key)
    assert event.team == team
    assert (event.target_type, event.target_id) == ("membership", str(membership.pk))
    assert event.before == {"username": "bob", "role": "member"}
    assert event.after == {"left": False}


def test_team_created_with_a_key(db):
    ada = UserFactory(username="ada")
    client, acting_key = key_api_client(ada)
    response = client.post("/v1/teams", {"slug": "labs", "name": "Labs"}, format="json")
    assert response.status_code == 201, response.content
    event = the_event("team.created")
    assert_actor(event, ada, via="key", key=acting_key)
    assert event.team.slug == "labs" and event.target_type == "team"
    assert event.before is None and event.after == {"slug": "labs", "name": "Labs"}


def test_a_taken_team_slug_records_nothing(acme):
    _team, ada, _bob = acme
    client, _key = key_api_client(ada)
    response = client.post("/v1/teams", {"slug": "acme", "name": "Again"}, format="json")
    assert response.status_code == 409, response.content
    assert not AuditEvent.objects.filter(action="team.created").exists()


def test_team_changed_on_the_team_page(acme):
    team, ada, _bob = acme
    response = session_client(ada).post(
        "/teams/acme/", {"action": "update", "name": "Acme Labs", "description": "Models"}
    )
    assert response.status_code == 302
    event = the_event("team.changed")
    assert_actor(event, ada, via="session")
    assert event.team == team
    assert event.before == {"name": team.name, "description": team.description}
    assert event.after == {"name": "Acme Labs", "description": "Models"}


def test_team_deleted_keeps_its_events_with_the_slug(acme):
    team, ada, _bob = acme
    response = session_client(ada).post("/teams/acme/", {"action": "delete"})
    assert response.status_code == 302
    event = the_event("team.deleted")
    assert_actor(event, ada, via="session")
    # The team is gone; its trail is not (the reference is set to NULL, the slug stays).
    assert event.team is None and event.team_slug == "acme"
    assert event.before == {"slug": "acme", "name": team.name}


# -- models ---------------------------------------------------------------------------------------


def test_model_published(acme):
    team, ada, _bob = acme
    build = BuildFactory(model=ModelFactory(owner=team, slug="sentiment"))
    client, acting_key = key_api_client(ada)
    response = client.post(
        "/v1/models/acme/sentiment/versions",
        {"bump": "minor", "visibility": "public"},
        format="json",
    )
    assert response.status_code == 201, response.content
    event = the_event("model.published")
    assert_actor(event, ada, via="key", key=acting_key)
    assert event.team == team
    assert (event.target_type, event.target_id) == ("model", str(build.model_id))
    assert event.target_repr == "acme/sentiment"
    assert event.before is None
    assert event.after["version"] == "0.1.0" and event.after["visibility"] == "public"
    assert event.after["model_visibility"] == "public"
    assert event.after["build"] == build.short_hash


def test_model_visibility_changed_is_a_major_publish_with_another_visibility(acme):
    team, ada, _bob = acme
    model = ModelFactory(owner=team, slug="private-one")
    VersionFactory(model=model, number="1.2.0", visibility=Visibility.PRIVATE)
    BuildFactory(model=model)
    response = session_api_client(ada).post(
        "/v1/models/acme/private-one/versions",
        {"bump": "major", "visibility": "public"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert not AuditEvent.objects.filter(action="model.published").exists()
    event = the_event("model.visibility_changed")
    assert_actor(event, ada, via="session")
    assert event.team == team and event.target_id == str(model.pk)
    assert event.before == {
        "version": "1.2.0",
        "visibility": "private",
        "model_visibility": "private",
    }
    assert event.after["version"] == "2.0.0"
    assert event.after["visibility"] == event.after["model_visibility"] == "public"


def test_model_deleted(acme):
    team, ada, _bob = acme
    model = ModelFactory(owner=team, slug="scratch")
    VersionFactory(model=model, number="1.0.0", visibility=Visibility.PRIVATE)
    client, acting_key = key_api_client(ada)
    response = client.delete("/v1/models/acme/scratch")
    assert response.status_code == 204, response.content
    assert not Model.objects.filter(pk=model.pk).exists()
    event = the_event("model.deleted")
    assert_actor(event, ada, via="key", key=acting_key)
    assert event.team == team
    assert (event.target_type, event.target_id, event.target_repr) == (
        "model",
        str(model.pk),
        "acme/scratch",
    )
    assert event.before == {"name": "acme/scratch", "visibility": "private", "versions": ["1.0.0"]}
    assert event.after is None


def test_a_model_that_was_called_is_not_deleted_and_nothing_is_recorded(acme):
    team, ada, bob = acme
    version = VersionFactory(model=ModelFactory(owner=team, slug="busy"), number="1.0.0")
    InvocationFactory(version=version, caller_team=team)
    client, _key = key_api_client(ada)
    response = client.delete("/v1/models/acme/busy")
    assert response.status_code == 409, response.content
    assert "called 1 times" in response.json()["error"]["message"]
    assert Model.objects.filter(slug="busy").exists()
    assert not AuditEvent.objects.filter(action="model.deleted").exists()
    member_client, _key = key_api_client(bob)
    assert member_client.delete("/v1/models/acme/busy").status_code == 403
    assert Client().delete("/v1/models/acme/busy").status_code == 401


# -- log-ins ---------------------------------------------------------------------------------------


def test_login_failure_through_the_form_records_ip_and_name_tried_but_no_password(db):
    ada = UserFactory(username="ada")
    browser = Client(REMOTE_ADDR=CLIENT_IP, HTTP_USER_AGENT=USER_AGENT)
    response = browser.post(
        "/accounts/login/", {"username": "ada", "password": "not-the-password-42"}
    )
    assert response.status_code == 200  # the form again, with its error
    event = the_event("login.failed")
    assert event.actor is None and event.actor_name == ""
    assert event.via == "anonymous" and event.ip == CLIENT_IP and event.user_agent == USER_AGENT
    assert (event.target_type, event.target_id, event.target_repr) == ("user", str(ada.pk), "ada")
    assert event.after == {"username": "ada", "known_user": True}
    assert event.team.slug == "ada"  # ada sees attempts on her account in her namespace
    assert "not-the-password-42" not in row_text(event)

    browser.post("/accounts/login/", {"username": "nobody", "password": "guess"})
    unknown = AuditEvent.objects.get(action="login.failed", target_repr="nobody")
    assert unknown.team is None and unknown.after == {"username": "nobody", "known_user": False}


def test_login_success_through_the_form(db):
    ada = UserFactory(username="ada")
    browser = Client(REMOTE_ADDR=CLIENT_IP, HTTP_USER_AGENT=USER_AGENT)
    response = browser.post("/accounts/login/", {"username": "ada", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    event = the_event("login.succeeded")
    assert_actor(event, ada, via="session")
    assert event.target_id == str(ada.pk)


# -- outside a request -----------------------------------------------------------------------------


def test_outside_a_request_the_actor_acts_through_the_system(acme):
    """The create_api_key command and tasks call services directly: via "system", no IP."""
    team, ada, _bob = acme
    key, _secret = account_services.api_key_create(actor=ada, team=team, name="cron", scopes=[])
    event = AuditEvent.objects.get(action="key.created", target_id=str(key.pk))
    assert (event.actor, event.via, event.ip, event.request_id) == (ada, "system", None, "")


def test_a_refused_action_records_nothing(acme):
    team, _ada, bob = acme
    response = session_api_client(bob).post(
        "/v1/teams/acme/members", {"username": "bob", "role": "owner"}, format="json"
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="member.").exists()
    assert team.memberships.count() == 2
