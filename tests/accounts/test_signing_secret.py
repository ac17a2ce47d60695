"""A namespace's webhook signing secret: random, its own, stored, readable and rotatable by its
admins only, and the one every webhook it sends is signed with."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from rest_framework.test import APIClient

from gateway.tasks import deliver_invocation_webhook
from marketplace.accounts.models import Team
from marketplace.accounts.services import team_rotate_signing_secret
from marketplace.audit.models import AuditEvent
from marketplace.core.errors import AuthorizationError
from marketplace.core.webhooks import sign
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway.factories import InvocationFactory
from tests.receivers import allow_outbound, webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def lab():
    """A team with an owner, an admin and a plain member."""
    team = TeamFactory(slug="lab")
    people = {role: UserFactory(username=f"lab-{role}") for role in ("owner", "admin", "member")}
    for role, user in people.items():
        MembershipFactory(team=team, user=user, role=role)
    return team, people


def _api(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client


def _session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_every_team_has_a_random_secret_of_its_own_that_secret_key_does_not_give(settings):
    first, second = TeamFactory(), TeamFactory()
    personal = UserFactory().personal_team
    secrets = {first.signing_secret, second.signing_secret, personal.signing_secret}
    assert len(secrets) == 3 and all(len(s) == 64 for s in secrets)
    # What the secret used to be: HMAC(SECRET_KEY, team id). Knowing the key gives nothing now.
    derived = hmac.new(
        settings.SECRET_KEY.encode(), f"invocation-webhooks:{first.pk}".encode(), hashlib.sha256
    ).hexdigest()
    assert first.signing_secret != derived
    settings.SECRET_KEY = "another-key"
    assert Team.objects.get(pk=first.pk).signing_secret == first.signing_secret


def test_admins_read_it_and_rotate_it_from_a_session_or_a_personal_full_access_key(lab):
    team, people = lab
    old = team.signing_secret
    _key, secret = make_key(people["admin"])
    read = _api(secret).get("/v1/teams/lab/signing-secret")
    assert read.status_code == 200
    assert read.json()["secret"] == old and read.json()["header"] == "X-Marketplace-Signature"

    rotated = _api(secret).post("/v1/teams/lab/signing-secret/rotate")
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["secret"]
    assert new != old and len(new) == 64
    assert Team.objects.get(pk=team.pk).signing_secret == new
    assert _session(people["owner"]).get("/v1/teams/lab/signing-secret").json()["secret"] == new
    again = _session(people["owner"]).post("/v1/teams/lab/signing-secret/rotate")
    assert again.status_code == 200 and again.json()["secret"] not in {old, new}


def test_members_narrow_keys_team_keys_and_strangers_can_neither_read_nor_rotate_it(lab):
    team, people = lab
    before = team.signing_secret
    _k, narrow = make_key(people["admin"], scopes=["algo://lab/*"])
    _k, team_key = make_key(people["owner"], team=team)
    refused = {
        "member": _session(people["member"]),
        "member key": _api(make_key(people["member"])[1]),
        "narrow key": _api(narrow),
        "team key": _api(team_key),
    }
    for who, client in refused.items():
        assert client.get("/v1/teams/lab/signing-secret").status_code == 403, who
        assert client.post("/v1/teams/lab/signing-secret/rotate").status_code == 403, who
    stranger = _session(UserFactory())
    assert stranger.post("/v1/teams/lab/signing-secret/rotate").status_code == 404
    assert APIClient().post("/v1/teams/lab/signing-secret/rotate").status_code in {401, 403}
    assert Team.objects.get(pk=team.pk).signing_secret == before
    assert not AuditEvent.objects.filter(action="team.signing_secret_rotated").exists()


def test_the_service_refuses_a_member(lab):
    team, people = lab
    with pytest.raises(AuthorizationError):
        team_rotate_signing_secret(team=team, actor=people["member"])


def test_rotation_is_audited_without_either_secret(lab):
    team, people = lab
    old = team.signing_secret
    new = _session(people["admin"]).post("/v1/teams/lab/signing-secret/rotate").json()["secret"]
    event = AuditEvent.objects.get(action="team.signing_secret_rotated")
    assert event.actor == people["admin"] and event.team == team and event.via == "session"
    assert event.target_type == "team" and event.target_id == str(team.pk)
    stored = " ".join(
        str(v) for v in AuditEvent.objects.filter(pk=event.pk).values().get().values()
    )
    assert old not in stored and new not in stored


def test_the_team_page_rotates_it_with_a_confirmation_and_csrf(lab):
    team, people = lab
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(people["admin"])
    page = browser.get("/teams/lab/")
    html = page.content.decode()
    assert team.signing_secret in html and 'value="rotate_signing_secret"' in html
    assert "data-confirm=" in html.split('value="rotate_signing_secret"')[0].rsplit("<form", 1)[1]
    # Without the CSRF token the form is refused and nothing changes.
    assert browser.post("/teams/lab/", {"action": "rotate_signing_secret"}).status_code == 403
    assert Team.objects.get(pk=team.pk).signing_secret == team.signing_secret
    token = page.cookies["csrftoken"].value
    done = browser.post(
        "/teams/lab/", {"action": "rotate_signing_secret", "csrfmiddlewaretoken": token}
    )
    assert done.status_code == 302
    assert Team.objects.get(pk=team.pk).signing_secret != team.signing_secret

    member = Client()
    member.force_login(people["member"])
    html = member.get("/teams/lab/").content.decode()
    assert team.signing_secret not in html and "rotate_signing_secret" not in html
    member.post("/teams/lab/", {"action": "rotate_signing_secret"})
    assert AuditEvent.objects.filter(action="team.signing_secret_rotated").count() == 1


def test_the_next_invocation_webhook_is_signed_with_the_new_secret(lab, settings):
    team, people = lab
    old = team.signing_secret
    with webhook_receiver() as (url, received):
        allow_outbound(settings, url)
        first = InvocationFactory(caller_team=team, webhook_url=url)
        deliver_invocation_webhook(str(first.pk))
        team_rotate_signing_secret(team=team, actor=people["owner"])
        second = InvocationFactory(caller_team=team, webhook_url=url)
        deliver_invocation_webhook(str(second.pk))
    new = Team.objects.get(pk=team.pk).signing_secret
    (first_headers, first_body), (second_headers, second_body) = received
    assert new != old
    assert first_headers["X-Marketplace-Signature"] == sign(old, first_body)
    assert second_headers["X-Marketplace-Signature"] == sign(new, second_body)


def test_budget_alerts_are_signed_with_the_team_secret(lab, settings):
    from billing.budgets import notifications
    from billing.budgets.selectors import current_month
    from billing.models import Budget, BudgetAlert

    team, people = lab
    team_rotate_signing_secret(team=team, actor=people["owner"])
    with webhook_receiver() as (url, received):
        allow_outbound(settings, url)
        budget = Budget.objects.create(team=team, monthly_amount=10, webhook_url=url)
        alert = BudgetAlert(budget=budget, month=current_month(), threshold=80, spent=8)
        notifications._post_webhook(budget, alert)
    headers, body = received[0]
    secret = Team.objects.get(pk=team.pk).signing_secret
    assert headers["X-Marketplace-Signature"] == sign(secret, body)


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_every_existing_team_its_own_secret():
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", "0002_team_signing_secret")])
    old_apps = executor.loader.project_state([("accounts", "0002_team_signing_secret")]).apps
    OldTeam = old_apps.get_model("accounts", "Team")
    for slug in ("old-one", "old-two", "old-three"):
        OldTeam.objects.create(slug=slug, name=slug)
    assert set(OldTeam.objects.values_list("signing_secret", flat=True)) == {None}

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    secrets = list(
        Team.objects.filter(slug__startswith="old-").values_list("signing_secret", flat=True)
    )
    assert len(secrets) == 3 and len(set(secrets)) == 3
    assert all(len(secret) == 64 for secret in secrets)
    column = next(
        c
        for c in connection.introspection.get_table_description(
            connection.cursor(), Team._meta.db_table
        )
        if c.name == "signing_secret"
    )
    assert column.null_ok is False
