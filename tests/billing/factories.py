"""Usage records as metering writes them: consistent by construction (day is the start's
UTC date, billed seconds and money zero when not billed, compute cost = billed seconds x
price to six places, total = compute cost + royalty), so reports can be checked against an
independent sum of the rows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from billing.models import UsageRecord, UsageStatus
from catalog.models import Version
from tests.catalog.factories import ModelFactory, VersionFactory
from tests.factories import TeamFactory

MICRO = Decimal("0.000001")
MILLI = Decimal("0.001")


def _version_of(record) -> Version:
    version = Version.objects.filter(model=record.model).first()  # the newest
    return version or VersionFactory(model=record.model, royalty_per_call=Decimal("0.001"))


class UsageRecordFactory(factory.django.DjangoModelFactory):
    """UsageRecordFactory(team=..., model=..., started_at=..., status=..., seconds=...)."""

    class Meta:
        model = UsageRecord
        exclude = ("seconds",)

    request_id = factory.LazyFunction(uuid.uuid4)
    team = factory.SubFactory(TeamFactory)
    user = None
    api_key = None
    key_prefix = factory.LazyAttribute(lambda r: r.api_key.prefix if r.api_key else "")
    project = ""
    model = factory.SubFactory(ModelFactory)
    model_owner = factory.LazyAttribute(lambda r: r.model.owner)
    model_name = factory.LazyAttribute(lambda r: f"{r.model.owner.slug}/{r.model.slug}")
    version = factory.LazyAttribute(_version_of)
    version_label = factory.LazyAttribute(lambda r: r.version.number)
    status = UsageStatus.SUCCEEDED
    error_type = factory.LazyAttribute(
        lambda r: {"failed": "AlgorithmError", "timeout": "TimeoutError"}.get(r.status, "")
    )
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1))
    seconds = Decimal("1.2")
    duration_seconds = factory.LazyAttribute(lambda r: Decimal(r.seconds).quantize(MILLI))
    ended_at = factory.LazyAttribute(
        lambda r: r.started_at + timedelta(seconds=float(r.duration_seconds))
    )
    billed = factory.LazyAttribute(lambda r: r.status == UsageStatus.SUCCEEDED)
    billed_seconds = factory.LazyAttribute(
        lambda r: r.duration_seconds if r.billed else Decimal(0).quantize(MILLI)
    )
    bytes_in = 100
    bytes_out = 200
    hardware_class = "cpu"
    price_per_second = Decimal("0.002300000")
    compute_cost = factory.LazyAttribute(
        lambda r: (
            (r.billed_seconds * r.price_per_second).quantize(MICRO)
            if r.billed
            else Decimal(0).quantize(MICRO)
        )
    )
    royalty = factory.LazyAttribute(
        lambda r: (
            r.version.royalty_per_call.quantize(MICRO) if r.billed else Decimal(0).quantize(MICRO)
        )
    )
    total = factory.LazyAttribute(lambda r: r.compute_cost + r.royalty)
    day = factory.LazyAttribute(lambda r: r.started_at.date())
