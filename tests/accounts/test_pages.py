"""The account pages as a browser uses them (forms, CSRF, messages)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from marketplace.accounts.models import ApiKey, Membership, Team, User
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_sign_up_logs_in_and_creates_the_namespace(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "Grace-Hopper",
            "email": "grace@example.com",
            "password1": "a-very-good-password",
            "password2": "a-very-good-password",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="grace-hopper")
    assert Team.objects.get(slug="grace-hopper").is_personal
    assert client.get("/teams/").context["user"] == user


SIGN_UP = {
    "username": "grace",
    "email": "grace@example.com",
    "password1": "a-very-good-password",
    "password2": "a-very-good-password",
}


def test_sign_up_returns_to_the_page_it_came_from(client):
    page = client.get("/accounts/signup/?next=/ada/sentiment%23try-it")
    assert 'name="next" value="/ada/sentiment#try-it"' in page.content.decode()
    # The way to log in instead keeps the page too, and the log-in page's way back here.
    assert "/accounts/login/?next=/ada/sentiment%23try-it" in page.content.decode()
    login = client.get("/accounts/login/?next=/ada/sentiment")
    assert "/accounts/signup/?next=/ada/sentiment" in login.content.decode()
    # A form sent back with an error keeps it.
    again = client.post("/accounts/signup/", {**SIGN_UP, "password2": "x", "next": "/ada/x"})
    assert 'name="next" value="/ada/x"' in again.content.decode()
    response = client.post("/accounts/signup/", {**SIGN_UP, "next": "/ada/sentiment#try-it"})
    assert response.status_code == 302
    assert response["Location"] == "/ada/sentiment#try-it"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http://testserver.evil.example/",
        " //evil.example",
    ],
)
def test_sign_up_never_redirects_off_the_site(client, target):
    page = client.get("/accounts/signup/", {"next": target})
    assert "evil" not in page.context["next"] and "javascript" not in page.context["next"]
    response = client.post("/accounts/signup/", {**SIGN_UP, "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/teams/"


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"username": "admin"}, "username", "reserved"),
        ({"username": "taken"}, "username", "taken"),
        ({"username": "ok-name", "password2": "different-one!"}, "password2", "differ"),
        ({"username": "ok-name", "password1": "123", "password2": "123"}, "password1", "short"),
    ],
)
def test_sign_up_errors_are_shown_on_the_field(client, data, field, text):
    TeamFactory(slug="taken")
    form = {
        "email": "x@example.com",
        "password1": "a-very-good-password",
        "password2": "a-very-good-password",
        **data,
    }
    response = client.post("/accounts/signup/", form)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert text in errors.lower()


def test_log_in_and_out(user):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/keys/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/keys/").status_code == 302


def test_pages_need_login(client):
    for url in ("/teams/", "/keys/", "/billing/", "/accounts/password/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_forms_are_csrf_protected(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/teams/", {"slug": "new-team"}).status_code == 403
    assert (
        client.post("/keys/", {"name": "k", "team": user.username, "access": "full"}).status_code
        == 403
    )
    assert not Team.objects.filter(slug="new-team").exists()


def test_key_secret_is_shown_once_on_the_page(browser, user):
    response = browser.post(
        "/keys/",
        {
            "name": "laptop",
            "team": user.username,
            "access": "restricted",
            "model_patterns": "algo://acme/*\n",
            "allow_billing": "on",
            "project": "churn",
            "expires": "30",
        },
    )
    assert response.status_code == 201
    secret = re.search(rb'id="new-key-secret">(mk_\w+)<', response.content).group(1).decode()
    key = ApiKey.objects.get(name="laptop")
    assert key.scopes == ["algo://acme/*", "billing:read"] and key.project == "churn"
    assert key.expires_at is not None
    page = browser.get("/keys/").content.decode()
    assert key.prefix in page and secret not in page


def test_bad_scope_on_the_key_page_is_a_field_error(browser, user):
    response = browser.post(
        "/keys/",
        {
            "name": "bad",
            "team": user.username,
            "access": "restricted",
            "model_patterns": "algo://A B",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["model_patterns"]
    assert not ApiKey.objects.filter(name="bad").exists()


def test_revoke_from_the_page(browser, user):
    from tests.factories import make_key

    key, _ = make_key(user)
    assert browser.post(f"/keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_team_pages_create_add_member_change_role(browser, user):
    response = browser.post("/teams/", {"slug": "lab", "name": "The Lab"})
    assert response.status_code == 302 and response["Location"] == "/teams/lab/"
    UserFactory(username="carol")
    browser.post("/teams/lab/", {"action": "add_member", "username": "carol", "role": "member"})
    assert Membership.objects.get(team__slug="lab", user__username="carol").role == "member"
    browser.post("/teams/lab/", {"action": "change_role", "username": "carol", "role": "billing"})
    assert Membership.objects.get(team__slug="lab", user__username="carol").role == "billing"
    page = browser.get("/teams/lab/")
    assert b"carol" in page.content and page.context["can_administer"]


def test_a_member_cannot_administer_from_the_page(user):
    team = TeamFactory(slug="their-team")
    MembershipFactory(team=team, user=user, role="member")
    client = Client()
    client.force_login(user)
    response = client.post(
        "/teams/their-team/", {"action": "add_member", "username": user.username, "role": "owner"}
    )
    assert response.status_code == 200
    assert b"Only the team" in response.content
    assert Membership.objects.get(team=team, user=user).role == "member"


def test_other_teams_are_404(browser):
    TeamFactory(slug="secret-team")
    assert browser.get("/teams/secret-team/").status_code == 404


@pytest.mark.parametrize(
    "url", ["/", "/docs/", "/explore/", "/explore/?q=iris", "/accounts/login/", "/accounts/signup/"]
)
def test_public_pages_render(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert b"<nav" in response.content


@pytest.mark.parametrize("url", ["/teams/", "/keys/", "/billing/", "/accounts/password/"])
def test_private_pages_render(browser, url):
    response = browser.get(url)
    assert response.status_code == 200
    assert b"<nav" in response.content


def test_a_key_given_only_a_name_calls_any_model(browser, user):
    page = browser.get("/keys/").content.decode()
    assert re.search(r'<input type="radio" name="access" value="call"[^>]* checked', page)
    response = browser.post("/keys/", {"name": "first", "team": user.username, "access": "call"})
    assert response.status_code == 201
    assert ApiKey.objects.get(name="first").scopes == ["algo://*"]
    assert b"data-key-does-nothing" not in response.content


def test_a_key_that_can_do_nothing_needs_a_deliberate_choice_and_is_warned_about(browser, user):
    form = {"name": "empty", "team": user.username, "access": "restricted"}
    refused = browser.post("/keys/", form)
    assert refused.status_code == 200 and not ApiKey.objects.filter(name="empty").exists()
    assert "could call no model" in refused.context["form"].errors["allow_nothing"][0]
    created = browser.post("/keys/", {**form, "allow_nothing": "on"})
    assert created.status_code == 201 and b"data-key-does-nothing" in created.content
    assert ApiKey.objects.get(name="empty").scopes == []
