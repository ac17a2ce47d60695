"""Audit events cannot be changed or deleted: the database refuses it (migration 0002), and
the admin offers neither."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.db import IntegrityError, transaction
from django.test import RequestFactory

from marketplace.audit.models import Action, AuditEvent
from marketplace.audit.services import REDACTED, audit_record
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    team = TeamFactory(slug="acme")
    return audit_record(
        action=Action.MEMBER_ADDED,
        actor=UserFactory(username="ada"),
        team=team,
        target_type="membership",
        target_id="1",
        target_repr="bob in acme (member)",
        after={"username": "bob", "role": "member"},
    )


def _refused(operation) -> None:
    with pytest.raises(IntegrityError, match="audit event"), transaction.atomic():
        operation()


def test_the_database_refuses_updates(event):
    rows = AuditEvent.objects.filter(pk=event.pk)
    _refused(lambda: rows.update(action="key.created"))
    _refused(lambda: rows.update(after={"role": "owner"}))
    _refused(lambda: rows.update(actor_name="someone-else"))
    _refused(lambda: rows.update(team=TeamFactory()))  # moving it to another team
    event.ip = "198.51.100.1"
    _refused(lambda: event.save())
    assert AuditEvent.objects.get(pk=event.pk).after == {"username": "bob", "role": "member"}


def test_the_database_refuses_deletes(event):
    _refused(lambda: AuditEvent.objects.filter(pk=event.pk).delete())
    _refused(lambda: event.delete())
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_deleting_the_actor_or_the_team_keeps_the_event_with_their_names(event):
    event.actor.delete()
    event.team.delete()
    kept = AuditEvent.objects.get(pk=event.pk)
    assert (kept.actor, kept.actor_name) == (None, "ada")
    assert (kept.team, kept.team_slug) == (None, "acme")
    assert kept.after == {"username": "bob", "role": "member"}


def test_the_admin_shows_events_but_offers_no_add_change_or_delete(event, client):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    model_admin = site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = admin
    assert model_admin.has_view_permission(request, event)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    assert not model_admin.get_actions(request)

    client.force_login(admin)
    assert client.get("/admin/audit/auditevent/").status_code == 200
    page = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.pk}/change/", {}).status_code == 403


def test_sensitive_values_never_reach_the_row(db):
    recorded = audit_record(
        action=Action.KEY_CREATED,
        target_type="api_key",
        before={"secret": "mk_abc", "nested": [{"password": "hunter2", "name": "ok"}]},
        after={"Secret_Hash": "0" * 64, "prefix": "mk_abcdefgh"},
    )
    assert recorded.before == {"secret": REDACTED, "nested": [{"password": REDACTED, "name": "ok"}]}
    assert recorded.after == {"Secret_Hash": REDACTED, "prefix": "mk_abcdefgh"}


def test_an_unknown_action_is_a_programming_error(db):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record(action="key.stolen")
