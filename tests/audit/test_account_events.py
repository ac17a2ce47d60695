"""Accounts announce their changes and the audit app records them (accounts sit below the
trail). A change whose event nothing records is not made."""

import pytest

from marketplace.accounts import events, services
from marketplace.accounts.models import Team
from marketplace.audit.models import Action, AuditEvent
from marketplace.audit.signals import record_account_change
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_account_event_is_an_action_of_the_trail():
    announced = {
        value for name, value in vars(events).items() if name.isupper() and isinstance(value, str)
    }
    assert announced <= set(Action.values)


def test_a_team_created_is_recorded_through_the_announcement():
    owner = UserFactory()
    team = services.team_create(actor=owner, slug="acme", name="Acme")
    event = AuditEvent.objects.get(action=Action.TEAM_CREATED)
    assert (event.team_id, event.actor_id, event.target_id) == (team.pk, owner.pk, str(team.pk))


def test_a_change_nothing_records_is_not_made():
    owner = UserFactory()
    events.account_changed.disconnect(dispatch_uid="marketplace.audit.account_changed")
    try:
        with pytest.raises(events.EventNotRecorded, match=r"team\.created"):
            services.team_create(actor=owner, slug="acme", name="Acme")
    finally:
        events.account_changed.connect(
            record_account_change, dispatch_uid="marketplace.audit.account_changed"
        )
    assert not Team.objects.filter(slug="acme").exists()
    assert not AuditEvent.objects.exists()
