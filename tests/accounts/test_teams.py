from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from marketplace.accounts import services
from marketplace.accounts.models import Membership, Team, User
from tests.conftest import assert_error_shape
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def team_with_roles():
    team = TeamFactory(slug="acme")
    people = {}
    for role in ("owner", "admin", "member", "billing"):
        people[role] = UserFactory(username=f"{role}-person")
        MembershipFactory(team=team, user=people[role], role=role)
    return team, people


def test_sign_up_creates_a_personal_namespace(db):
    user = services.user_sign_up(
        username="ada", email="ada@example.com", password="a-long-enough-password"
    )
    team = Team.objects.get(slug="ada")
    assert team.is_personal and team.personal_owner == user
    assert Membership.objects.get(team=team, user=user).role == "owner"


def test_users_and_teams_share_one_slug_space(db):
    TeamFactory(slug="acme")
    with pytest.raises(services.ConflictError):
        services.user_sign_up(
            username="acme", email="x@example.com", password="a-long-enough-password"
        )
    user = UserFactory(username="bob")
    with pytest.raises(services.ConflictError):
        services.team_create(actor=user, slug="bob", name="Bob's team")


def test_reserved_and_malformed_names_are_refused(db):
    for bad in ("admin", "v1", "Upper", "a", "-lead", "has space", "x" * 40):
        with pytest.raises(services.InputError):
            services.user_sign_up(
                username=bad, email="x@example.com", password="a-long-enough-password"
            )
    assert not User.objects.exists()


def test_create_team_via_api_makes_creator_owner(user):
    response = _as(user).post("/v1/teams", {"slug": "research", "name": "Research"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "owner"
    assert Membership.objects.get(team__slug="research", user=user).role == "owner"
    slugs = [t["slug"] for t in _as(user).get("/v1/teams").json()["results"]]
    assert slugs == [user.username, "research"]


def test_duplicate_team_slug_is_409(user):
    TeamFactory(slug="taken")
    assert_error_shape(
        _as(user).post("/v1/teams", {"slug": "taken"}, format="json"), 409, "ConflictError"
    )


def test_a_member_cannot_administer_the_team(team_with_roles):
    team, people = team_with_roles
    outsider = UserFactory(username="outsider")
    for role in ("member", "billing"):
        client = _as(people[role])
        assert_error_shape(
            client.post("/v1/teams/acme/members", {"username": "outsider"}, format="json"),
            403,
            "AuthorizationError",
        )
        assert_error_shape(
            client.patch("/v1/teams/acme/members/admin-person", {"role": "member"}, format="json"),
            403,
        )
        assert_error_shape(client.delete("/v1/teams/acme/members/owner-person"), 403)
        assert_error_shape(client.patch("/v1/teams/acme", {"name": "x"}, format="json"), 403)
        assert_error_shape(client.delete("/v1/teams/acme"), 403)
    assert not Membership.objects.filter(user=outsider, team=team).exists()
    assert Team.objects.filter(slug="acme").exists()


def test_admin_manages_members_but_not_owners(team_with_roles):
    _team, people = team_with_roles
    UserFactory(username="newbie")
    client = _as(people["admin"])
    response = client.post(
        "/v1/teams/acme/members", {"username": "newbie", "role": "billing"}, format="json"
    )
    assert response.status_code == 201 and response.json()["role"] == "billing"
    assert (
        client.patch("/v1/teams/acme/members/newbie", {"role": "member"}, format="json").status_code
        == 200
    )
    assert_error_shape(
        client.patch("/v1/teams/acme/members/newbie", {"role": "owner"}, format="json"), 403
    )
    assert_error_shape(client.delete("/v1/teams/acme/members/owner-person"), 403)
    assert client.delete("/v1/teams/acme/members/newbie").status_code == 204


def test_the_last_owner_cannot_leave_or_be_demoted(team_with_roles):
    _team, people = team_with_roles
    client = _as(people["owner"])
    assert_error_shape(
        client.patch("/v1/teams/acme/members/owner-person", {"role": "admin"}, format="json"), 409
    )
    assert_error_shape(client.delete("/v1/teams/acme/members/owner-person"), 409)
    client.patch("/v1/teams/acme/members/admin-person", {"role": "owner"}, format="json")
    assert client.delete("/v1/teams/acme/members/owner-person").status_code == 204


def test_non_members_do_not_see_a_team(team_with_roles):
    stranger = _as(UserFactory())
    assert_error_shape(stranger.get("/v1/teams/acme"), 404, "NotFoundError")
    assert_error_shape(stranger.get("/v1/teams/acme/members"), 404)


def test_members_can_leave(team_with_roles):
    team, people = team_with_roles
    assert _as(people["member"]).delete("/v1/teams/acme/members/member-person").status_code == 204
    assert not Membership.objects.filter(team=team, user=people["member"]).exists()


def test_owner_deletes_team_but_not_personal_namespace(team_with_roles):
    _team, people = team_with_roles
    owner = _as(people["owner"])
    assert_error_shape(owner.delete("/v1/teams/owner-person"), 400, "InputError")
    assert owner.delete("/v1/teams/acme").status_code == 204
    assert not Team.objects.filter(slug="acme").exists()


def test_unknown_role_and_user_are_clear_errors(team_with_roles):
    _team, people = team_with_roles
    client = _as(people["owner"])
    error = assert_error_shape(
        client.post("/v1/teams/acme/members", {"username": "ghost"}, format="json"), 404
    )
    assert "ghost" in error["message"]
    error = assert_error_shape(
        client.post(
            "/v1/teams/acme/members", {"username": "member-person", "role": "king"}, format="json"
        ),
        400,
        "InputError",
    )
    assert "role" in error["message"]
