"""Who reads which trail (team owners and admins their team's, platform admins everything),
the filters, the CSV and JSON exports (the same set as the page), and the API."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.accounts.models import Role
from marketplace.audit.api import AuditEventOutput
from marketplace.audit.exports import CSV_COLUMNS, event_record
from marketplace.audit.models import Action, AuditEvent
from marketplace.audit.services import audit_record
from tests.audit.factories import AuditEventFactory
from tests.conftest import assert_error_shape
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Two teams with events of their own, and people in every role of acme."""
    acme, globex = TeamFactory(slug="acme"), TeamFactory(slug="globex")
    people = {}
    for role in (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.BILLING):
        people[role] = UserFactory(username=f"{role}-person")
        MembershipFactory(team=acme, user=people[role], role=role)
    outsider = UserFactory(username="outsider")
    MembershipFactory(team=globex, user=outsider, role=Role.OWNER)
    staff = UserFactory(username="root", is_staff=True)
    now = timezone.now()

    def event(action, team, actor, *, days_ago=0, target="thing"):
        AuditEventFactory(
            action=action,
            team=team,
            actor=actor,
            target_repr=target,
            at=now - timedelta(days=days_ago, seconds=len(target)),
        )

    owner, admin = people[Role.OWNER], people[Role.ADMIN]
    event(Action.KEY_CREATED, acme, owner, target="ci key")
    event(Action.KEY_REVOKED, acme, admin, target="ci key", days_ago=10)
    event(Action.MEMBER_ADDED, acme, owner, target="dan in acme")
    event(Action.MODEL_PUBLISHED, acme, admin, target="acme/sentiment", days_ago=3)
    event(Action.KEY_CREATED, globex, outsider, target="globex key")
    event(Action.PRICE_CREATED, None, staff, target="cpu")
    return {"acme": acme, "globex": globex, "people": people, "outsider": outsider, "staff": staff}


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _acme_events() -> set[str]:
    return {
        str(pk) for pk in AuditEvent.objects.filter(team_slug="acme").values_list("pk", flat=True)
    }


def _page_ids(response) -> list[str]:
    return [str(event.id) for event in response.context["events"]]


# -- who may read ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_team_owners_and_admins_see_their_teams_events_only(world, role):
    response = _browser(world["people"][role]).get("/teams/acme/audit/")
    assert response.status_code == 200
    assert set(_page_ids(response)) == _acme_events()
    assert b"globex key" not in response.content and b"cpu" not in response.content


def test_another_teams_trail_does_not_exist_for_them(world):
    assert _browser(world["people"][Role.OWNER]).get("/teams/globex/audit/").status_code == 404
    assert _browser(world["outsider"]).get("/teams/acme/audit/").status_code == 404


@pytest.mark.parametrize("role", [Role.MEMBER, Role.BILLING])
def test_members_without_an_admin_role_are_refused(world, role):
    response = _browser(world["people"][role]).get("/teams/acme/audit/")
    assert response.status_code == 403


def test_the_team_page_links_the_trail_for_admins_only(world):
    link = b"/teams/acme/audit/"
    assert link in _browser(world["people"][Role.ADMIN]).get("/teams/acme/").content
    assert link not in _browser(world["people"][Role.MEMBER]).get("/teams/acme/").content


def test_platform_admins_see_everything_and_no_one_else_does(world):
    response = _browser(world["staff"]).get("/audit/")
    assert response.status_code == 200
    assert response.context["page_obj"].paginator.count == AuditEvent.objects.count()
    assert b"/audit/" in _browser(world["staff"]).get("/").content  # the account menu
    assert _browser(world["people"][Role.OWNER]).get("/audit/").status_code == 403
    assert Client().get("/audit/").status_code == 302  # to the log-in page
    # and every team's trail
    assert _browser(world["staff"]).get("/teams/globex/audit/").status_code == 200


# -- filters and exports ---------------------------------------------------------------------------


def _csv_ids(response) -> list[str]:
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0].keys()) == list(CSV_COLUMNS) if rows else True
    return [row["id"] for row in rows]


def _json_ids(response) -> list[str]:
    return [item["id"] for item in json.loads(b"".join(response.streaming_content))]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=key", ["ci key", "ci key"]),
        ("action=key.revoked", ["ci key"]),
        ("actor=owner-person", ["ci key", "dan in acme"]),
        ("target=sentiment", ["acme/sentiment"]),
        ("start={d5}", ["ci key", "dan in acme", "acme/sentiment"]),
        ("end={d5}", ["ci key"]),
        ("start={d5}&end={d1}", ["acme/sentiment"]),
    ],
)
def test_filters_and_the_exports_select_the_same_events(world, query, expected):
    today = timezone.now().date()
    query = query.format(
        d5=(today - timedelta(days=5)).isoformat(), d1=(today - timedelta(days=1)).isoformat()
    )
    browser = _browser(world["people"][Role.ADMIN])
    page = browser.get(f"/teams/acme/audit/?{query}")
    assert page.status_code == 200
    assert sorted(e.target_repr for e in page.context["events"]) == sorted(expected)
    ids = _page_ids(page)
    as_csv = browser.get(f"/teams/acme/audit/?{query}&format=csv")
    as_json = browser.get(f"/teams/acme/audit/?{query}&format=json")
    assert as_csv["Content-Type"].startswith("text/csv")
    assert "attachment" in as_csv["Content-Disposition"]
    assert _csv_ids(as_csv) == ids == _json_ids(as_json)


def test_exports_hold_every_page(world, monkeypatch):
    monkeypatch.setattr("marketplace.audit.views.PAGE_SIZE", 2)
    browser = _browser(world["staff"])
    first = browser.get("/audit/")
    assert len(first.context["events"]) == 2 and first.context["page_obj"].has_next()
    assert len(_json_ids(browser.get("/audit/?format=json"))) == AuditEvent.objects.count()
    assert browser.get("/audit/?page=2").context["page_obj"].number == 2


def test_platform_filters_by_team(world):
    response = _browser(world["staff"]).get("/audit/?team=globex")
    assert {e.target_repr for e in response.context["events"]} == {"globex key"}


def test_bad_filters_are_explained(world):
    browser = _browser(world["people"][Role.OWNER])
    page = browser.get("/teams/acme/audit/?start=yesterday")
    assert page.status_code == 400 and b"start" in page.content
    assert browser.get("/teams/acme/audit/?start=2026-02-01&end=2026-01-01").status_code == 400
    assert browser.get("/teams/acme/audit/?format=xml").status_code == 400
    assert browser.get("/teams/acme/audit/?format=csv&start=nope").status_code == 400


def test_a_csv_cell_that_looks_like_a_formula_is_quoted(world):
    audit_record(
        action=Action.LOGIN_FAILED,
        target_type="user",
        target_repr='=HYPERLINK("http://evil")',
    )
    body = b"".join(_browser(world["staff"]).get("/audit/?format=csv").streaming_content)
    assert b"'=HYPERLINK" in body


# -- the API ---------------------------------------------------------------------------------------


def _key_client(user, **kwargs) -> APIClient:
    _key, secret = make_key(user, **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client


def test_api_lists_a_teams_events_with_filters_and_pages(world):
    client = _key_client(world["people"][Role.ADMIN])
    response = client.get("/v1/teams/acme/audit", {"action": "key", "page_size": 1})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]
    item = body["results"][0]
    assert set(item) == set(AuditEventOutput().fields)
    assert item == event_record(AuditEvent.objects.get(pk=item["id"]))
    assert item["team"] == "acme" and item["action"].startswith("key.")


def test_api_equals_the_json_export(world):
    admin = world["people"][Role.ADMIN]
    api = _key_client(admin).get("/v1/teams/acme/audit", {"actor": "owner-person"}).json()
    export = b"".join(
        _browser(admin).get("/teams/acme/audit/?actor=owner-person&format=json").streaming_content
    )
    # the key made for the API call is itself an event of ada's namespace, not acme's
    assert api["results"] == json.loads(export)


def test_api_access_rules(world):
    admin, member = world["people"][Role.ADMIN], world["people"][Role.MEMBER]
    assert_error_shape(_key_client(member).get("/v1/teams/acme/audit"), 403)
    assert_error_shape(_key_client(admin).get("/v1/teams/globex/audit"), 404)
    assert_error_shape(APIClient().get("/v1/teams/acme/audit"), 401)
    narrow = _key_client(admin, scopes=["algo://acme/*"])
    error = assert_error_shape(narrow.get("/v1/teams/acme/audit"), 403)
    assert "personal full-access key" in error["message"]
    team_key = _key_client(world["people"][Role.OWNER], team=world["acme"])
    assert_error_shape(team_key.get("/v1/teams/acme/audit"), 403)
    session = APIClient()
    session.force_login(admin)
    assert session.get("/v1/teams/acme/audit").status_code == 200
    assert_error_shape(_key_client(admin).get("/v1/teams/acme/audit?start=soon"), 400)


def test_the_page_shows_what_changed_and_what_did_not():
    changed = AuditEventFactory.build(
        before={"role": "member", "username": "bob"},
        after={"role": "admin", "username": "bob", "scopes": ["a", "b"], "left": False},
    )
    assert changed.changes == [
        ("left", None, "no", True),
        ("role", "member", "admin", True),
        ("scopes", None, "a, b", True),
        ("username", "bob", "bob", False),
    ]
    deleted = AuditEventFactory.build(before={"name": "acme/x"}, after=None)
    assert deleted.changes == [("name", "acme/x", None, False)]
