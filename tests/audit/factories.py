from __future__ import annotations

import factory
from django.utils import timezone

from marketplace.audit.models import AuditEvent


class AuditEventFactory(factory.django.DjangoModelFactory):
    """An event as audit_record would write it, at any time (events cannot be changed after,
    so a test that needs an old one makes it old from the start)."""

    class Meta:
        model = AuditEvent

    at = factory.LazyFunction(timezone.now)
    action = "key.created"
    actor = None
    actor_name = factory.LazyAttribute(lambda e: e.actor.username if e.actor else "")
    via = "session"
    ip = "192.0.2.10"
    team = None
    team_slug = factory.LazyAttribute(lambda e: e.team.slug if e.team else "")
    target_type = "api_key"
    target_repr = "a key"
