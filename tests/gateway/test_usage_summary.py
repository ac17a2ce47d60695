"""A model's public usage figures (calls, median latency, error rate) against an independent
computation over generated invocations."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from gateway.selectors import model_usage_summary
from tests.catalog.factories import VersionFactory
from tests.gateway.factories import InvocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_figures_equal_an_independent_computation():
    rng = random.Random(7)
    version = VersionFactory(model__visibility="public")
    other = VersionFactory()
    now = timezone.now()
    counted = []
    for _ in range(101):
        status = rng.choice(["succeeded"] * 6 + ["failed", "timeout", "canceled", "running"])
        duration = round(rng.uniform(0.005, 3.0), 3)
        days_ago = rng.uniform(0, 45)
        created = now - timedelta(days=days_ago)
        finished = status != "running"
        InvocationFactory(
            version=version,
            status=status,
            duration=duration,
            created_at=created,
            finished_at=created + timedelta(seconds=duration) if finished else None,
        )
        if days_ago < 30 and status in ("succeeded", "failed", "timeout"):
            counted.append((status, duration))
    InvocationFactory.create_batch(5, version=other, status="failed")

    summary = model_usage_summary(version.model)

    assert summary.calls == len(counted)
    assert summary.errors == sum(1 for status, _ in counted if status != "succeeded")
    expected_median_ms = statistics.median(d for _, d in counted) * 1000
    assert summary.median_latency_ms == pytest.approx(expected_median_ms, abs=0.01)
    assert summary.error_rate == pytest.approx(summary.errors / len(counted))


def test_a_model_never_called_has_no_figures():
    summary = model_usage_summary(VersionFactory().model)
    assert (summary.calls, summary.median_latency_ms, summary.error_rate) == (0, None, None)


def test_the_model_page_shows_the_figures(client):
    version = VersionFactory(model__visibility="public")
    for duration in (0.1, 0.2, 0.3):
        InvocationFactory(version=version, duration=duration)
    InvocationFactory(version=version, duration=0.4, status="failed")
    page = client.get(version.model.url)
    html = page.content.decode()
    assert page.status_code == 200
    assert '<dd data-stat="calls">4</dd>' in html
    assert '<dd data-stat="median-latency">250 ms</dd>' in html
    assert '<dd data-stat="error-rate">25.0%</dd>' in html


def test_the_model_page_shows_the_compute_price_in_force(client):
    from decimal import Decimal

    from billing.models import ComputePrice

    version = VersionFactory(model__visibility="public")
    assert "free at the moment" in client.get(version.model.url).content.decode()
    ComputePrice.objects.create(
        hardware_class="cpu",
        price_per_second=Decimal("0.000125"),
        effective_from=timezone.now() - timedelta(minutes=1),
    )
    ComputePrice.objects.create(
        hardware_class="cpu",
        price_per_second=Decimal("9"),
        effective_from=timezone.now() + timedelta(days=1),
    )
    html = client.get(version.model.url).content.decode()
    assert '<strong class="mono" data-price>0.000125</strong> credits per second' in html
