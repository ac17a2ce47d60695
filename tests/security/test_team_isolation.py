"""Team B never reads team A's usage (JSON, CSV, pages), earnings, budgets, audit trail,
members, keys, webhooks or signing secret: not as a user of B, not with B's keys, not through
query parameters of B's own reports; and a key of team B never acts for team A, even when
its holder also belongs to A. Team A's owner reads each of them, so every check can fail."""

from __future__ import annotations

import pytest

from marketplace.accounts.models import Role
from tests.conftest import assert_error_shape
from tests.factories import MembershipFactory, UserFactory, make_key

from .leak_world import (
    OUTSIDER_TEAM,
    OWNER_TEAM,
    PRIVATE_KEY_NAME,
    PRIVATE_PATH,
    PRIVATE_PROJECT,
    api,
    browser,
    build_leak_world,
    outsider_api_clients,
    outsider_browsers,
    text_of,
)

BUDGET = "4321.5"


@pytest.fixture
def world(db):
    return build_leak_world()


def _team_a_secrets(world) -> list[str]:
    """What only team A's billing, audit, members and keys pages show."""
    return [
        PRIVATE_PROJECT,
        PRIVATE_KEY_NAME,
        world.owner_team_key[0].prefix,
        world.owner_key[0].prefix,
        BUDGET,
        "mira",
        PRIVATE_PATH,
        world.team_a.signing_secret,
    ]


def _assert_none_of(response, secrets, who) -> None:
    body = text_of(response)
    for secret in secrets:
        assert secret not in body, (who, secret, response)


def _team_a_api_paths() -> list[str]:
    team = f"/v1/teams/{OWNER_TEAM}"
    return [
        team,
        f"{team}/members",
        f"{team}/members/orla",
        f"{team}/usage",
        f"{team}/usage?format=csv",
        f"{team}/usage?group_by=key",
        f"{team}/usage?group_by=user",
        f"{team}/usage?group_by=project&project={PRIVATE_PROJECT}",
        f"{team}/earnings",
        f"{team}/earnings?format=csv&group_by=version",
        f"{team}/budget",
        f"{team}/budgets",
        f"{team}/budgets/{PRIVATE_PROJECT}",
        f"{team}/audit",
        f"{team}/audit?action=key",
        f"{team}/webhooks",
        f"{team}/signing-secret",
    ]


def test_team_a_reads_its_own_billing_audit_members_and_keys(world):
    owner = api()
    owner.force_login(world.owner)
    for path in _team_a_api_paths():
        assert owner.get(path).status_code == 200, path
    team = f"/v1/teams/{OWNER_TEAM}"
    assert PRIVATE_PROJECT in text_of(owner.get(f"{team}/usage?group_by=project"))
    assert world.owner_team_key[0].prefix in text_of(owner.get(f"{team}/usage?group_by=key"))
    assert PRIVATE_PATH in text_of(owner.get(f"{team}/usage?format=csv"))
    assert "mira" in text_of(owner.get(f"{team}/members"))
    assert BUDGET in text_of(owner.get(f"{team}/budgets"))
    assert PRIVATE_KEY_NAME in text_of(owner.get("/v1/keys"))
    assert PRIVATE_PROJECT in text_of(owner.get(f"{team}/audit"))  # the budget's audit event
    pages = browser(world.owner)
    for path in _team_a_pages():
        assert pages.get(path).status_code == 200, path
    assert PRIVATE_PROJECT in text_of(pages.get(f"/teams/{OWNER_TEAM}/usage/?group_by=project"))


def test_outsiders_get_404_for_everything_of_team_a_over_the_api(world):
    secrets = _team_a_secrets(world)
    for who, client in outsider_api_clients(world).items():
        for path in _team_a_api_paths():
            response = client.get(path, HTTP_ACCEPT="text/csv") if "usage" in path else None
            for answer in filter(None, (response, client.get(path))):
                expected = (401,) if who == "anonymous" else (404,)
                assert answer.status_code in expected, (who, path, answer.status_code)
                assert_error_shape(answer, answer.status_code)
                _assert_none_of(answer, secrets, f"{who} {path}")


def _team_a_pages() -> list[str]:
    return [
        f"/teams/{OWNER_TEAM}/",
        f"/teams/{OWNER_TEAM}/usage/",
        f"/teams/{OWNER_TEAM}/usage/?group_by=key",
        f"/teams/{OWNER_TEAM}/earnings/",
        f"/teams/{OWNER_TEAM}/budgets/",
        f"/teams/{OWNER_TEAM}/audit/",
        f"/teams/{OWNER_TEAM}/audit/?format=csv",
        f"/teams/{OWNER_TEAM}/audit/?format=json",
    ]


def test_outsiders_get_404_for_every_page_of_team_a(world):
    secrets = _team_a_secrets(world)
    for who, client in outsider_browsers(world).items():
        for path in _team_a_pages():
            page = client.get(path)
            if who == "anonymous":
                assert page.status_code == 302 and "/accounts/login/" in page["Location"]
            else:
                assert page.status_code == 404, (who, path, page.status_code)
            _assert_none_of(page, secrets, f"{who} {path}")
        # Pages listing what is "yours" list nothing of team A.
        if who != "anonymous":
            for path in ("/billing/", "/keys/", "/teams/", "/dashboard/"):
                page = client.get(path)
                assert page.status_code == 200
                _assert_none_of(page, [*secrets, OWNER_TEAM], f"{who} {path}")


def test_team_a_members_without_a_billing_role_read_neither_usage_nor_audit(world):
    mira = api()
    mira.force_login(world.member)
    for path in (
        f"/v1/teams/{OWNER_TEAM}/usage",
        f"/v1/teams/{OWNER_TEAM}/earnings",
        f"/v1/teams/{OWNER_TEAM}/budgets",
        f"/v1/teams/{OWNER_TEAM}/audit",
        f"/v1/teams/{OWNER_TEAM}/signing-secret",
    ):
        response = mira.get(path)
        assert_error_shape(response, 403)
        _assert_none_of(response, [PRIVATE_PROJECT, BUDGET], path)


def test_query_parameters_of_team_b_reports_never_reach_team_a(world):
    client = api(world.outsider_key[1])
    secrets = _team_a_secrets(world)
    usage = f"/v1/teams/{OUTSIDER_TEAM}/usage"
    mine = client.get(usage, {"group_by": "key"}).json()
    assert {row["key"] for row in mine["rows"]} == {world.outsider_key[0].prefix}
    assert mine["totals"]["calls"] == 1
    for params in (
        {"team": OWNER_TEAM},
        {"owner": OWNER_TEAM},
        {"team_id": str(world.team_a.pk)},
        {"group_by": "key", "team": OWNER_TEAM},
        {"group_by": "user", "team": OWNER_TEAM},
        {"group_by": "project", "project": PRIVATE_PROJECT},
        {"group_by": "model", "model": PRIVATE_PATH},
    ):
        for fmt in ("json", "csv"):
            response = client.get(usage, {**params, "format": fmt})
            assert response.status_code == 200, (params, response.content)
            # The report names the project it was asked for; nothing else of team A.
            _assert_none_of(response, [s for s in secrets if s not in params.values()], params)
        body = client.get(usage, params).json()
        assert body["team"] == OUTSIDER_TEAM
        assert body["totals"]["calls"] == (0 if "project" in params else 1), params
        keys = {row["key"] for row in body["rows"]}
        if params.get("group_by") == "user":
            assert keys == {"bruno"}
    audit = client.get(f"/v1/teams/{OUTSIDER_TEAM}/audit", {"team": OWNER_TEAM})
    assert audit.status_code == 200 and audit.json()["results"] == []
    every = client.get(f"/v1/teams/{OUTSIDER_TEAM}/audit").json()["results"]
    assert every and {event["team"] for event in every} == {OUTSIDER_TEAM}
    _assert_none_of(client.get(f"/v1/teams/{OUTSIDER_TEAM}/audit"), secrets, "audit")


def test_earnings_never_show_the_callers_keys_users_or_projects(world):
    """Team B called team A's public model: A earns from it, but sees nothing of B's own."""
    owner = api()
    owner.force_login(world.owner)
    earnings = f"/v1/teams/{OWNER_TEAM}/earnings"
    for group_by in ("model", "version", "day", "status"):
        for fmt in ("json", "csv"):
            response = owner.get(earnings, {"group_by": group_by, "format": fmt})
            assert response.status_code == 200
            _assert_none_of(
                response,
                [world.outsider_key[0].prefix, "bruno", "vantorproject", OUTSIDER_TEAM],
                f"earnings by {group_by}",
            )
    body = owner.get(earnings, {"group_by": "model"}).json()
    assert body["totals"]["calls"] == 4  # two private-model calls, mira's, and bruno's
    for group_by in ("key", "user", "project"):
        assert_error_shape(owner.get(earnings, {"group_by": group_by}), 400)
    assert_error_shape(owner.get(earnings, {"project": "vantorproject"}), 400)


def test_outsiders_cannot_see_or_revoke_team_a_keys(world):
    key = world.owner_team_key[0]
    for who, client in outsider_api_clients(world).items():
        listed = client.get("/v1/keys")
        if listed.status_code == 200:
            assert str(key.pk) not in {k["id"] for k in listed.json()["results"]}, who
            _assert_none_of(listed, [PRIVATE_KEY_NAME, key.prefix], who)
        for response in (client.get(f"/v1/keys/{key.pk}"), client.delete(f"/v1/keys/{key.pk}")):
            assert response.status_code in (401, 403, 404), (who, response.content)
            _assert_none_of(response, [PRIVATE_KEY_NAME, key.prefix], who)
        created = client.post("/v1/keys", {"name": "x", "team": OWNER_TEAM}, format="json")
        assert created.status_code in (401, 403, 404), (who, created.content)
    key.refresh_from_db()
    assert key.revoked_at is None


@pytest.fixture
def dana(world):
    """An admin of team A who owns team B, holding a full-scope key of team B."""
    dana = UserFactory(username="dana")
    MembershipFactory(team=world.team_a, user=dana, role=Role.ADMIN)
    MembershipFactory(team=world.team_b, user=dana, role=Role.OWNER)
    _key, secret = make_key(dana, team=world.team_b, name="dana b key")
    return dana, api(secret)


def test_a_team_b_key_never_reads_or_acts_for_team_a_even_when_its_holder_may(world, dana):
    user, key_client = dana
    session = api()
    session.force_login(user)
    # As herself, dana reads team A (so each refusal below is the key's doing).
    for path in ("", "/members", "/usage", "/webhooks", "/signing-secret", "/audit"):
        assert session.get(f"/v1/teams/{OWNER_TEAM}{path}").status_code == 200, path
    assert session.get(f"/v1/models/{PRIVATE_PATH}").status_code == 200
    secrets = _team_a_secrets(world)
    for path in _team_a_api_paths():
        response = key_client.get(path)
        assert response.status_code in (403, 404), (path, response.status_code, response.content)
        assert_error_shape(response, response.status_code)
        _assert_none_of(response, secrets, path)
    for path in (
        f"/v1/models/{PRIVATE_PATH}",
        f"/v1/models/{PRIVATE_PATH}/errors",
        f"/v1/invocations/{world.failed_call.pk}",
    ):
        assert_error_shape(key_client.get(path), 404)
    refused = [
        key_client.post(f"/v1/algo/{PRIVATE_PATH}", {"text": "x"}, format="json"),
        key_client.post(f"/v1/invocations/{world.owner_call.pk}/cancel"),
        key_client.post(f"/v1/models/{OWNER_TEAM}", {"http": {"url": "http://x/"}}, format="json"),
        key_client.put(f"/v1/teams/{OWNER_TEAM}/budget", {"monthly_amount": "1"}, format="json"),
        key_client.post(f"/v1/teams/{OWNER_TEAM}/members", {"username": "bruno", "role": "owner"}),
        key_client.post("/v1/keys", {"name": "x", "team": OWNER_TEAM}, format="json"),
        key_client.post(f"/v1/teams/{OWNER_TEAM}/signing-secret/rotate"),
    ]
    for response in refused:
        assert response.status_code in (403, 404), (response.request, response.content)
    # What the key lists as "its" teams and keys is team B's only.
    me = key_client.get("/v1/me").json()
    assert {t["slug"] for t in me["teams"]} <= {OUTSIDER_TEAM, "dana"}
    assert OWNER_TEAM not in {t["slug"] for t in key_client.get("/v1/teams").json()["results"]}
    keys = key_client.get("/v1/keys")
    assert keys.status_code == 403 or PRIVATE_KEY_NAME not in text_of(keys)
    world.owner_call.refresh_from_db()
    assert world.owner_call.status == "running"
