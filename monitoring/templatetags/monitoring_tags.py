"""Figures as the monitoring pages show them.

{% load monitoring_tags %}
{{ figures.p95_ms|ms }}  {{ figures.error_rate_percent|percent }}  {{ figures.calls|count }}
"""

from __future__ import annotations

from decimal import Decimal

from django import template

from billing.formatting import format_count
from monitoring import selectors
from monitoring.charts import NO_VALUE, format_ms

register = template.Library()


@register.filter
def ms(value) -> str:
    """1234.56 -> "1,234.6 ms"; None -> an en dash."""
    return format_ms(value)


@register.filter
def percent(value) -> str:
    """An error rate in percent with one place: 2.5 -> "2.5%"; None -> an en dash."""
    if value is None:
        return NO_VALUE
    return f"{Decimal(str(value)).quantize(Decimal('0.1'))}%"


@register.filter(name="count")
def count_filter(value) -> str:
    return format_count(value)


@register.simple_tag
def model_monitoring_summary(model, window_name: str = "24h"):
    """The figures of `model` over a monitoring window, for the card the model page shows
    its owners (templates/monitoring/_model_card.html; the page checks membership)."""
    current = selectors.window(window_name)
    return selectors.model_metrics(
        model, start=current.start, end=current.end, bucket=current.bucket
    )
