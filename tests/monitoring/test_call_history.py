"""The Calls pages and API: a team's calls and refused calls, newest first, paged by a
keyset cursor, filtered by model, status and key; shown to the team's members only; kept
inputs and outputs shown to the calling team only and deleted after its retention."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import UsageRecord
from gateway import call_bodies, refusals
from gateway.models import Invocation, KeptCallBody, RefusedCall
from gateway.tasks import purge_call_history
from marketplace.accounts.models import Role
from marketplace.accounts.principals import Principal
from marketplace.core.errors import (
    AuthenticationError,
    AuthorizationError,
    InputError,
    NotFoundError,
    RateLimitError,
    UnavailableError,
)
from monitoring import call_history
from tests.catalog.factories import VersionFactory
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway.factories import InvocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory(slug="globex", name="Globex")


@pytest.fixture
def member(team):
    user = UserFactory(username="hank")
    MembershipFactory(team=team, user=user, role=Role.OWNER)
    return user


@pytest.fixture
def stranger():
    user = UserFactory(username="mallory")
    MembershipFactory(user=user, role=Role.OWNER)  # of a team of their own
    return user


@pytest.fixture
def versions():
    acme = TeamFactory(slug="acme")
    return {
        "sentiment": VersionFactory(model__slug="sentiment", model__owner=acme),
        "ocr": VersionFactory(model__slug="ocr", model__owner=acme),
    }


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def refuse(principal, error, *, at, name="sentiment", request_id=None) -> None:
    assert refusals.refused_call_record(
        principal=principal,
        owner="acme",
        name=name,
        version=None,
        error=error,
        request_id=request_id or str(uuid.uuid4()),
        at=at,
    )


def all_pages(team, filters=None, *, limit) -> list:
    rows, before = [], None
    for _ in range(100):
        page = call_history.team_calls(team, filters, before=before, limit=limit)
        rows += page.rows
        if page.next_cursor is None:
            return rows
        before = page.next_cursor
    raise AssertionError("the pages never ended")


def test_pages_walk_calls_and_refusals_newest_first_once_each(team, member, versions):
    key, _ = make_key(member, team=team)
    principal = Principal(member, key)
    start = timezone.now() - timedelta(hours=1)
    calls = []
    for n in range(23):
        # Groups of three calls share an instant, so the cursor must break ties.
        at = start + timedelta(minutes=n // 3)
        calls.append(
            InvocationFactory(
                version=versions["sentiment" if n % 2 else "ocr"],
                caller_team=team,
                api_key=key,
                created_at=at,
            )
        )
    for n in range(5):
        # A refusal at the same instant as a group of calls.
        refuse(principal, RateLimitError(f"limit {n}"), at=start + timedelta(minutes=n))
    InvocationFactory(version=versions["ocr"], created_at=start)  # another team's call
    rows = all_pages(team, limit=4)
    assert len(rows) == 23 + 5
    assert len({(row.kind, row.id) for row in rows}) == len(rows)
    assert [row.sort_key for row in rows] == sorted((r.sort_key for r in rows), reverse=True)
    assert {row.request_id for row in rows if row.kind == "c"} == {c.pk for c in calls}
    refused = [row for row in rows if row.is_refused]
    assert {row.reason for row in refused} == {"RateLimitError"}
    assert {row.message for row in refused} == {f"limit {n}" for n in range(5)}


def test_filters_by_model_status_and_key(team, member, versions):
    key, _ = make_key(member, team=team, name="ci")
    other_key, _ = make_key(member, team=team, name="laptop")
    now = timezone.now()
    ok = InvocationFactory(version=versions["sentiment"], caller_team=team, api_key=key)
    failed = InvocationFactory(
        version=versions["ocr"], caller_team=team, api_key=other_key, status="failed"
    )
    refuse(Principal(member, key), NotFoundError("no such version"), at=now)
    refuse(Principal(member, other_key), AuthorizationError("scope"), at=now, name="ocr")

    def ids(**params):
        filters = call_history.call_filters(params)
        return {row.request_id for row in all_pages(team, filters, limit=50) if row.kind == "c"}, {
            row.reason for row in all_pages(team, filters, limit=50) if row.is_refused
        }

    assert ids(model="acme/sentiment") == ({ok.pk}, {"NotFoundError"})
    assert ids(model="acme/ocr", status="failed") == ({failed.pk}, set())
    assert ids(status="refused") == (set(), {"NotFoundError", "AuthorizationError"})
    assert ids(key=other_key.prefix) == ({failed.pk}, {"AuthorizationError"})
    assert ids(model="acme/nothing") == (set(), set())
    with pytest.raises(InputError):
        call_history.call_filters({"status": "exploded"})
    with pytest.raises(InputError):
        call_history.call_filters({"model": "no slash"})
    with pytest.raises(InputError):
        call_history.team_calls(team, before="not-a-cursor")


def test_cost_comes_from_the_billed_usage_record(team, versions):
    call = InvocationFactory(version=versions["ocr"], caller_team=team)
    unbilled = InvocationFactory(version=versions["ocr"], caller_team=team)
    for invocation, billed in ((call, True), (unbilled, False)):
        UsageRecord.objects.create(
            request_id=invocation.pk,
            team=team,
            model=invocation.model,
            model_owner=invocation.model.owner,
            model_name="acme/ocr",
            version_label=invocation.version_label,
            status="succeeded",
            started_at=invocation.created_at,
            ended_at=invocation.finished_at,
            duration_seconds=Decimal("0.1"),
            billed_seconds=Decimal("0.1"),
            hardware_class="cpu",
            price_per_second=Decimal("0.01"),
            billed=billed,
            compute_cost=Decimal("0.001"),
            royalty=Decimal("0.0005"),
            total=Decimal("0.0015"),
            day=invocation.created_at.date(),
        )
    rows = {row.request_id: row for row in call_history.team_calls(team).rows}
    assert rows[call.pk].cost == Decimal("0.0015")
    assert rows[unbilled.pk].cost is None
    assert rows[call.pk].duration == pytest.approx(0.1)


# -- refusals ----------------------------------------------------------------------------------


def test_refusals_are_counted_per_caller_reason_and_minute(team, member):
    key, _ = make_key(member, team=team)
    principal = Principal(member, key)
    minute = timezone.now().replace(second=0, microsecond=0)
    for second in range(30):
        refuse(principal, RateLimitError("slow down"), at=minute + timedelta(seconds=second))
    refuse(principal, InputError("bad input"), at=minute)
    refuse(principal, RateLimitError("slow down"), at=minute + timedelta(minutes=1))
    rows = RefusedCall.objects.filter(team=team).order_by("minute", "reason")
    assert [(r.reason, r.count) for r in rows] == [
        ("InputError", 1),
        ("RateLimitError", 30),
        ("RateLimitError", 1),
    ]
    first = rows[1]
    assert first.first_at == minute and first.last_at == minute + timedelta(seconds=29)
    assert first.api_key == key and first.model_name == "acme/sentiment"
    assert first.status_code == 429


def test_what_is_not_recorded_as_a_refusal(team, member):
    key, _ = make_key(member, team=team)
    principal = Principal(member, key)
    common = {"owner": "acme", "name": "x", "version": None, "request_id": str(uuid.uuid4())}
    # A key that does not authenticate cannot be attributed; a 5xx is not a refusal.
    assert not refusals.refused_call_record(
        principal=principal, error=AuthenticationError("bad key"), **common
    )
    assert not refusals.refused_call_record(
        principal=principal, error=UnavailableError("down"), **common
    )
    assert not refusals.refused_call_record(
        principal=Principal(None), error=NotFoundError("nope"), **common
    )
    counted = RateLimitError("the team's concurrency")
    setattr(counted, refusals.CALL_ALREADY_RECORDED, True)
    assert not refusals.refused_call_record(principal=principal, error=counted, **common)
    assert not RefusedCall.objects.exists()


def test_a_sessions_refusal_belongs_to_the_users_own_namespace(member):
    from marketplace.accounts.services import personal_namespace_ensure

    personal = personal_namespace_ensure(user=member)
    refuse(Principal(member), InputError("the body is not valid JSON"), at=timezone.now())
    row = RefusedCall.objects.get()
    assert row.team == personal and row.api_key is None and row.subject == f"user:{member.pk}"


def test_old_refusals_are_purged(team, member, settings):
    settings.REFUSED_CALL_RETENTION_DAYS = 30
    principal = Principal(member, make_key(member, team=team)[0])
    now = timezone.now()
    refuse(principal, InputError("old"), at=now - timedelta(days=31))
    refuse(principal, InputError("recent"), at=now - timedelta(days=29))
    assert refusals.refused_calls_purge() == 1
    assert list(RefusedCall.objects.values_list("message", flat=True)) == ["recent"]


# -- kept bodies and their retention -----------------------------------------------------------


def kept(invocation, *, age_days: float) -> KeptCallBody:
    body = call_bodies.input_keep(invocation, content_type="json", data={"text": "secret"})
    KeptCallBody.objects.filter(pk=body.pk).update(
        created_at=timezone.now() - timedelta(days=age_days)
    )
    return body


def test_the_periodic_task_deletes_kept_bodies_after_each_teams_retention(team, versions):
    short = TeamFactory(slug="short", call_body_retention_days=1)
    team.call_body_retention_days = 7
    team.save()
    long_kept = kept(InvocationFactory(version=versions["ocr"], caller_team=team), age_days=6)
    long_gone = kept(InvocationFactory(version=versions["ocr"], caller_team=team), age_days=8)
    short_kept = kept(InvocationFactory(version=versions["ocr"], caller_team=short), age_days=0.5)
    short_gone = kept(InvocationFactory(version=versions["ocr"], caller_team=short), age_days=2)
    # The beat schedule names the task that does it.
    scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert purge_call_history.name in scheduled
    assert purge_call_history.apply().get() == {"kept_bodies": 2, "refused_calls": 0}
    left = set(KeptCallBody.objects.values_list("pk", flat=True))
    assert left == {long_kept.pk, short_kept.pk}
    assert not {long_gone.pk, short_gone.pk} & left
    # The calls themselves stay.
    assert Invocation.objects.filter(pk=long_gone.pk).exists()


def test_size_limits_cut_text_and_drop_binary(team, versions, settings):
    settings.CALL_BODY_KEEP_MAX_BYTES = 10
    call = InvocationFactory(version=versions["ocr"], caller_team=team)
    body = call_bodies.input_keep(call, content_type="text", data="ééééééééé")  # 18 bytes
    assert body.input_kept and body.input_truncated
    assert body.input_text == "ééééé" and len(body.input_text.encode()) == 10
    call_bodies.output_keep(call, content_type="binary", data="QUJDREVGR0hJSktMTU5P")
    body.refresh_from_db()
    assert not body.output_kept and body.output_truncated and body.output_text == ""
    settings.CALL_BODY_KEEP_MAX_BYTES = 100
    small = InvocationFactory(version=versions["ocr"], caller_team=team)
    body = call_bodies.input_keep(small, content_type="text", data="a\x00b")
    assert body.input_kept and not body.input_truncated and body.input_text == "a\\u0000b"


def test_only_admins_change_what_is_kept(team, member):
    plain = UserFactory(username="plain")
    MembershipFactory(team=team, user=plain, role=Role.MEMBER)
    key, _ = make_key(member, team=team)
    with pytest.raises(AuthorizationError):
        call_bodies.api_key_set_keep_call_bodies(actor=plain, key=key, keep=True)
    with pytest.raises(AuthorizationError):
        call_bodies.team_set_call_body_retention(actor=plain, team=team, days=30)
    with pytest.raises(InputError):
        call_bodies.team_set_call_body_retention(actor=member, team=team, days=365)
    call_bodies.api_key_set_keep_call_bodies(actor=member, key=key, keep=True)
    call_bodies.team_set_call_body_retention(actor=member, team=team, days=30)
    key.refresh_from_db()
    team.refresh_from_db()
    assert key.keep_call_bodies and team.call_body_retention_days == 30


# -- the pages and the API ---------------------------------------------------------------------


def test_the_calls_page_lists_and_links_each_call(team, member, versions):
    key, _ = make_key(member, team=team, name="ci")
    call = InvocationFactory(version=versions["ocr"], caller_team=team, api_key=key)
    refuse(
        Principal(member, key), AuthorizationError("its scopes are algo://x/*"), at=call.created_at
    )
    client = browser(member)
    html = client.get("/teams/globex/calls/").content.decode()
    assert f'data-request-id="{call.pk}"' in html
    assert f'href="/requests/?id={call.pk}"' in html
    assert 'data-field="reason">AuthorizationError<' in html
    assert "its scopes are algo://x/*" in html
    key_page = client.get(f"/teams/globex/keys/{key.pk}/calls/")
    assert (
        key_page.status_code == 200 and f'data-request-id="{call.pk}"' in key_page.content.decode()
    )
    bad = client.get("/teams/globex/calls/", {"status": "nope"})
    assert bad.status_code == 400 and "status: one of" in bad.content.decode()
    # The links that reach it: navigation, the team page, the key list.
    assert client.get("/calls/")["Location"] == f"/teams/{member.username}/calls/"
    assert 'href="/teams/globex/calls/"' in client.get("/teams/globex/").content.decode()
    keys_html = client.get("/keys/").content.decode()
    assert f'href="/teams/globex/keys/{key.pk}/calls/"' in keys_html
    assert 'href="/calls/"' in keys_html


def test_the_pages_settings_forms(team, member):
    key, _ = make_key(member, team=team)
    client = browser(member)
    client.post("/teams/globex/calls/", {"retention_days": "14"})
    client.post(f"/teams/globex/keys/{key.pk}/calls/", {"keep_call_bodies": "on"})
    team.refresh_from_db()
    key.refresh_from_db()
    assert team.call_body_retention_days == 14 and key.keep_call_bodies
    client.post(f"/teams/globex/keys/{key.pk}/calls/", {})
    key.refresh_from_db()
    assert not key.keep_call_bodies


def test_another_teams_member_finds_nothing_anywhere(team, member, stranger, versions):
    key, _ = make_key(member, team=team)
    call = InvocationFactory(version=versions["ocr"], caller_team=team, api_key=key)
    _, stranger_secret = make_key(stranger, team=stranger.teams.first())
    client = browser(stranger)
    for path in (
        "/teams/globex/calls/",
        f"/teams/globex/keys/{key.pk}/calls/",
        f"/requests/?id={call.pk}",
    ):
        assert client.get(path).status_code == 404, path
        assert client.post(
            path, {"retention_days": "90", "keep_call_bodies": "on"}
        ).status_code in (
            404,
            405,
        ), path
    # Their own team's page does not reach another team's key either.
    own = stranger.teams.first().slug
    assert client.get(f"/teams/{own}/keys/{key.pk}/calls/").status_code == 404
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Simple {stranger_secret}")
    assert api.get("/v1/teams/globex/calls").status_code == 404
    assert api.get(f"/v1/invocations/{call.pk}").status_code == 404
    team.refresh_from_db()
    key.refresh_from_db()
    assert team.call_body_retention_days == 7 and not key.keep_call_bodies


def test_kept_bodies_show_to_the_calling_team_only(team, member, versions):
    model_owner = UserFactory(username="acme-owner")
    MembershipFactory(team=versions["ocr"].model.owner, user=model_owner)
    call = InvocationFactory(version=versions["ocr"], caller_team=team, keep_bodies=True)
    call_bodies.input_keep(call, content_type="json", data={"text": "the caller's secret"})
    call_bodies.output_keep(call, content_type="json", data={"label": "positive"})
    mine = browser(member).get("/requests/", {"id": str(call.pk)}).content.decode()
    assert "the caller&#x27;s secret" in mine and "positive" in mine
    theirs = browser(model_owner).get("/requests/", {"id": str(call.pk)})
    assert theirs.status_code == 200  # the model's owners see the call...
    assert "the caller" not in theirs.content.decode()  # ...never what was sent
    assert 'data-field="kept"' not in theirs.content.decode()


def test_the_api_lists_calls_with_the_same_filters(team, member, versions):
    key, secret = make_key(member, team=team)
    call = InvocationFactory(
        version=versions["ocr"], caller_team=team, api_key=key, status="failed"
    )
    InvocationFactory(version=versions["sentiment"], caller_team=team, api_key=key)
    refuse(Principal(member, key), RateLimitError("slow"), at=timezone.now())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    body = api.get("/v1/teams/globex/calls", {"status": "failed", "model": "acme/ocr"}).json()
    assert [c["request_id"] for c in body["calls"]] == [str(call.pk)]
    assert body["calls"][0]["kind"] == "call" and body["next"] is None
    refused = api.get("/v1/teams/globex/calls", {"status": "refused"}).json()["calls"]
    assert [(c["kind"], c["reason"], c["count"]) for c in refused] == [
        ("refused", "RateLimitError", 1)
    ]
    page = api.get("/v1/teams/globex/calls", {"limit": 1}).json()
    assert len(page["calls"]) == 1 and page["next"]
    second = api.get("/v1/teams/globex/calls", {"limit": 1, "before": page["next"]}).json()
    assert second["calls"][0]["request_id"] != page["calls"][0]["request_id"]
    bad = api.get("/v1/teams/globex/calls", {"status": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["error_type"] == "InputError"
    _, narrow = make_key(member, team=team, scopes=["algo://*"])
    api.credentials(HTTP_AUTHORIZATION=f"Simple {narrow}")
    assert api.get("/v1/teams/globex/calls").status_code == 403
