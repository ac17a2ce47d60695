from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from gateway.models import Invocation
from tests.catalog.factories import VersionFactory
from tests.factories import TeamFactory


class InvocationFactory(factory.django.DjangoModelFactory):
    """A finished call of a version: InvocationFactory(version=v, duration=0.2, status=...)."""

    class Meta:
        model = Invocation
        exclude = ("duration",)

    version = factory.SubFactory(VersionFactory)
    model = factory.LazyAttribute(lambda i: i.version.model)
    build = factory.LazyAttribute(lambda i: i.version.build)
    version_label = factory.LazyAttribute(lambda i: i.version.number)
    caller_team = factory.SubFactory(TeamFactory)
    status = "succeeded"
    backend = "local"
    timeout_seconds = 60.0
    input_content_type = "json"
    duration = 0.1
    created_at = factory.LazyFunction(timezone.now)
    started_at = factory.LazyAttribute(lambda i: i.created_at)
    finished_at = factory.LazyAttribute(lambda i: i.created_at + timedelta(seconds=i.duration))
    model_duration = factory.LazyAttribute(lambda i: i.duration)
