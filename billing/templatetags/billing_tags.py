"""Template side of the billing pages: figures formatted the one way (billing.formatting) and
the SVG charts (billing.charts) drawn from a report's rows.

    {% load billing_tags %}
    {{ row.total|credits }}  {{ row.calls|count }}  {{ row.compute_seconds|seconds }}
    {% day_chart report "total" chart_id="cost-per-day" title="Cost per day" %}
    {% models_chart rows "calls" note="total" chart_id="top-models" title="..." %}
"""

from __future__ import annotations

from django import template

from billing import charts
from billing.formatting import format_count, format_credits, format_seconds

register = template.Library()

# measure -> (unit, format)
MEASURES = {
    "total": ("credits", format_credits),
    "compute_cost": ("credits", format_credits),
    "royalties": ("credits", format_credits),
    "calls": ("calls", format_count),
    "billed_calls": ("calls", format_count),
    "errors": ("errors", format_count),
}


@register.filter
def credits(value) -> str:
    return format_credits(value)


@register.filter(name="count")
def count_filter(value) -> str:
    return format_count(value)


@register.filter
def seconds(value) -> str:
    return format_seconds(value)


@register.simple_tag
def day_chart(
    report,
    measure: str,
    *,
    chart_id: str,
    title: str,
    empty_message: str = "",
    compact: bool = False,
):
    """A bar per day of `report` (grouped by day, every day present) for one measure;
    `compact` for a sidebar."""
    unit, value_format = MEASURES[measure]
    size = {"width": 300, "height": 190, "max_labels": 3} if compact else {}
    return charts.day_bar_chart(
        [(row.key[0], getattr(row, measure)) for row in report.rows],
        chart_id=chart_id,
        title=title,
        unit=unit,
        value_format=value_format,
        empty_message=empty_message or "No usage in this period",
        **size,
    )


@register.simple_tag
def models_chart(
    rows, measure: str, *, chart_id: str, title: str, note: str = "", empty_message: str = ""
):
    """A horizontal bar per row (a model) for one measure; `note` names a second measure
    written next to each bar."""
    unit, value_format = MEASURES[measure]
    bars = []
    for row in rows:
        extra = ""
        if note:
            note_unit, note_format = MEASURES[note]
            extra = f"{note_format(getattr(row, note))} {note_unit}"
        bars.append(charts.Bar(row.label, getattr(row, measure), extra))
    return charts.horizontal_bar_chart(
        bars,
        chart_id=chart_id,
        title=title,
        unit=unit,
        value_format=value_format,
        empty_message=empty_message or "No usage in this period",
    )
