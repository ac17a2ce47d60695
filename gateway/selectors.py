"""Reads over invocations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Aggregate, Count, DurationField, F, Q
from django.utils import timezone

from .models import Invocation, InvocationStatus

USAGE_WINDOW_DAYS = 30
USAGE_CACHE_SECONDS = 60


class Median(Aggregate):
    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


class ErrorRates:
    """The error rate of figures with `calls` and `errors` among them (None without calls),
    for the model page's summary and monitoring's figures alike."""

    calls: int
    errors: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    @property
    def error_rate_percent(self) -> float | None:
        return 100 * self.errors / self.calls if self.calls else None


@dataclass(frozen=True)
class UsageSummary(ErrorRates):
    """A model's public usage figures over the last `days` days of finished calls."""

    days: int
    calls: int
    errors: int
    median_latency_ms: float | None


def model_usage_summary(model, *, days: int = USAGE_WINDOW_DAYS) -> UsageSummary:
    """Calls, errors (model errors and timeouts) and the median round trip (accepted to
    finished) of a model's finished calls, served from a one-minute cache: the model page is
    read far more often than the figures change."""
    key = f"model-usage:{model.pk}:{days}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    since = timezone.now() - timedelta(days=days)
    figures = Invocation.objects.filter(
        model=model,
        created_at__gte=since,
        status__in=(
            InvocationStatus.SUCCEEDED,
            InvocationStatus.FAILED,
            InvocationStatus.TIMEOUT,
        ),
        finished_at__isnull=False,
    ).aggregate(
        calls=Count("pk"),
        errors=Count(
            "pk", filter=Q(status__in=(InvocationStatus.FAILED, InvocationStatus.TIMEOUT))
        ),
        median=Median(F("finished_at") - F("created_at")),
    )
    median = figures["median"]
    summary = UsageSummary(
        days=days,
        calls=figures["calls"],
        errors=figures["errors"],
        median_latency_ms=median.total_seconds() * 1000 if median is not None else None,
    )
    cache.set(key, summary, USAGE_CACHE_SECONDS)
    return summary
