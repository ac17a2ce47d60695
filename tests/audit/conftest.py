from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from marketplace.audit.models import AuditEvent
from tests.factories import make_key

CLIENT_IP = "203.0.113.7"
USER_AGENT = "audit-tests/1.0"


def the_event(action: str) -> AuditEvent:
    """The one event of `action` (failing if there are none or several)."""
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [(e.action, e.target_repr) for e in AuditEvent.objects.all()]
    return events[0]


def row_text(event: AuditEvent) -> str:
    """Everything stored in the event's row, as text, to look for what must not be there."""
    return " ".join(
        str(v) for v in AuditEvent.objects.filter(pk=event.pk).values().first().values()
    )


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def session_client(user) -> Client:
    """A browser: a real session, from CLIENT_IP."""
    client = Client(REMOTE_ADDR=CLIENT_IP, HTTP_USER_AGENT=USER_AGENT)
    client.force_login(user)
    return client


def session_api_client(user) -> APIClient:
    client = APIClient(REMOTE_ADDR=CLIENT_IP, HTTP_USER_AGENT=USER_AGENT)
    client.force_login(user)
    return client


def key_api_client(user, **kwargs):
    """An API client authenticated with a new full-access personal key of `user`, from
    CLIENT_IP; returns (client, key)."""
    key, secret = make_key(user, name=kwargs.pop("name", "automation"), **kwargs)
    client = APIClient(REMOTE_ADDR=CLIENT_IP, HTTP_USER_AGENT=USER_AGENT)
    client.credentials(HTTP_AUTHORIZATION=f"Simple {secret}")
    return client, key
