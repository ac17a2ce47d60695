"""Server-side SVG charts of a model's figures per hour or day: bars (calls with their errors
drawn over them, cold starts) and lines (p50/p95/p99 latency), on the pieces of
marketplace/core/charts.py: plain string building, every text escaped, the same input always
giving the same bytes, each chart an image with a name and a description for screen readers,
a <title> tooltip per bucket, and a sentence instead of an empty axis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString

from billing.charts import Bar, day_bar_chart, horizontal_bar_chart
from billing.formatting import format_count, format_day
from marketplace.core.charts import (
    EMPTY_HEIGHT,
    TEXT,
    TICKS,
    empty_chart,
    gridlines,
    nice_step,
    px,
    svg,
)

CSS_CLASS = "chart monitoring-chart"
MAX_LABELS = 8
WIDTH = 960
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 40, 40

Value = int | float | None
NO_VALUE = "\N{EN DASH}"


@dataclass(frozen=True)
class Series:
    """One named series: a value per bucket (None: nothing to show there)."""

    name: str
    key: str  # a class name suffix: chart-series-{key}
    color: str
    values: Sequence[Value]


def format_ms(value: Value) -> str:
    """Latency as a page shows it: "1,234.5 ms"; an en dash for none."""
    if value is None:
        return NO_VALUE
    return f"{Decimal(str(value)).quantize(Decimal('0.1')):,.1f} ms"


def _tick_ms(value: float) -> str:
    """An axis tick of milliseconds: "4,000", "2.5"."""
    tick = Decimal(str(value))
    return f"{tick:,.0f}" if tick == tick.to_integral_value() else f"{tick.normalize():,f}"


def bucket_label(start: datetime, bucket: str) -> str:
    """A short axis label: "May 3" for a day, "13:00" for an hour ("May 3" at midnight)."""
    if bucket == "day" or (start.hour == 0 and start.minute == 0):
        return format_day(start.date())
    return start.strftime("%H:%M")


def bucket_name(start: datetime, bucket: str) -> str:
    """A bucket in words, for tooltips: "2024-05-03" or "2024-05-03 13:00 to 14:00 UTC"."""
    if bucket == "day":
        return start.date().isoformat()
    return f"{start:%Y-%m-%d %H:%M} to {(start.hour + 1) % 24:02d}:00 UTC"


def _empty(chart_id: str, title: str, message: str, width: int) -> SafeString:
    desc = f"{title}: {message.lower()}."
    return empty_chart(chart_id, title, desc, width, EMPTY_HEIGHT, message, css_class=CSS_CLASS)


def _frame(
    starts: Sequence[datetime],
    bucket: str,
    series: Sequence[Series],
    *,
    peak: Decimal,
    integer: bool,
    value_format: Callable[[Value], str],
    unit: str,
    width: int,
    height: int,
) -> tuple[list[str], Decimal, Decimal]:
    """Legend, gridlines with their ticks, and bucket labels; returns the parts, the
    axis maximum and a bucket's width."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    step = nice_step(peak, integer=integer)
    axis_max = step * TICKS
    parts = []
    x = LEFT
    for item in series:
        parts.append(
            f'<g class="chart-legend chart-series-{escape(item.key)}">'
            f'<rect x="{x}" y="10" width="12" height="12" rx="2" fill="{escape(item.color)}"/>'
            f'<text x="{x + 17}" y="20" fill="{TEXT}" font-size="12">{escape(item.name)}</text>'
            f"</g>"
        )
        x += 30 + 8 * len(item.name)
    parts.append(
        f'<text class="chart-unit" x="{width - RIGHT}" y="20" text-anchor="end" '
        f'fill="{TEXT}" font-size="11">{escape(unit)} per {escape(bucket)} (UTC)</text>'
    )
    parts += gridlines(
        step=step,
        axis_max=axis_max,
        left=LEFT,
        right=RIGHT,
        top=TOP,
        plot_h=plot_h,
        width=width,
        tick_text=lambda tick: value_format(int(tick) if integer else float(tick)),
    )
    slot = Decimal(plot_w) / len(starts)
    every = -(-len(starts) // MAX_LABELS)
    for index, start in enumerate(starts):
        if index % every == 0:
            parts.append(
                f'<text class="chart-label" x="{px(LEFT + slot * index + slot / 2)}" '
                f'y="{TOP + plot_h + 16}" text-anchor="middle" fill="{TEXT}" font-size="11">'
                f"{escape(bucket_label(start, bucket))}</text>"
            )
    return parts, axis_max, slot


def _describe(title: str, starts, bucket: str, text: str) -> str:
    first, last = bucket_name(starts[0], bucket), bucket_name(starts[-1], bucket)
    return f"{title} from {first} to {last}: {text}."


def bucket_bar_chart(
    starts: Sequence[datetime],
    series: Sequence[Series],
    *,
    bucket: str,
    chart_id: str,
    title: str,
    unit: str,
    empty_message: str = "No calls in this period",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """A bar per bucket for each series, drawn over one another in order (so a later series
    must be a part of the former: errors over calls). Counts only."""
    if not starts or not any(value for item in series for value in item.values):
        return _empty(chart_id, title, empty_message, width)
    peak = max(value or 0 for item in series for value in item.values)
    parts, axis_max, slot = _frame(
        starts,
        bucket,
        series,
        peak=Decimal(peak),
        integer=True,
        value_format=format_count,
        unit=unit,
        width=width,
        height=height,
    )
    plot_h = height - TOP - BOTTOM
    bar_w = slot * Decimal("0.72")
    for index, start in enumerate(starts):
        x = LEFT + slot * index
        values = [(item, item.values[index] or 0) for item in series]
        tip = f"{bucket_name(start, bucket)}: " + ", ".join(
            f"{format_count(value)} {item.name.lower()}" for item, value in values
        )
        bars = []
        for item, value in values:
            bar_h = Decimal(plot_h) * Decimal(value) / axis_max
            bars.append(
                f'<rect class="chart-series chart-series-{escape(item.key)}" '
                f'x="{px(x + (slot - bar_w) / 2)}" y="{px(TOP + plot_h - bar_h)}" '
                f'width="{px(bar_w)}" height="{px(bar_h)}" fill="{escape(item.color)}" '
                f'data-value="{value}"/>'
            )
        parts.append(
            f'<g class="chart-bucket" data-bucket="{escape(start.isoformat())}">'
            f"<title>{escape(tip)}</title>"
            f'<rect class="chart-hit" x="{px(x)}" y="{TOP}" width="{px(slot)}" '
            f'height="{plot_h}" fill="transparent"/>{"".join(bars)}</g>'
        )
    totals = ", ".join(
        f"{format_count(sum(v or 0 for v in item.values))} {item.name.lower()} in all"
        for item in series
    )
    desc = _describe(title, starts, bucket, totals)
    return svg(chart_id, title, desc, width, height, "".join(parts), css_class=CSS_CLASS)


def bucket_line_chart(
    starts: Sequence[datetime],
    series: Sequence[Series],
    *,
    bucket: str,
    chart_id: str,
    title: str,
    unit: str = "ms",
    value_format: Callable[[Value], str] = format_ms,
    tick_format: Callable[[float], str] = _tick_ms,
    empty_message: str = "No calls in this period",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """A line per series across the buckets, broken where a bucket has no value, with a
    dot per value; one tooltip per bucket lists every series."""
    values = [value for item in series for value in item.values if value is not None]
    if not starts or not values:
        return _empty(chart_id, title, empty_message, width)
    peak = Decimal(str(max(values))) or Decimal(1)
    parts, axis_max, slot = _frame(
        starts,
        bucket,
        series,
        peak=peak,
        integer=False,
        value_format=tick_format,
        unit=unit,
        width=width,
        height=height,
    )
    plot_h = height - TOP - BOTTOM

    def point(index: int, value) -> tuple[str, str]:
        x = LEFT + slot * index + slot / 2
        y = TOP + plot_h - Decimal(plot_h) * Decimal(str(value)) / axis_max
        return px(x), px(y)

    for index, start in enumerate(starts):
        tip = f"{bucket_name(start, bucket)}: " + ", ".join(
            f"{item.name} {value_format(item.values[index])}" for item in series
        )
        parts.append(
            f'<g class="chart-bucket" data-bucket="{escape(start.isoformat())}">'
            f"<title>{escape(tip)}</title>"
            f'<rect class="chart-hit" x="{px(LEFT + slot * index)}" y="{TOP}" '
            f'width="{px(slot)}" height="{plot_h}" fill="transparent"/></g>'
        )
    for item in series:
        runs, run = [], []
        for index, value in enumerate(item.values):
            if value is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(point(index, value))
        if run:
            runs.append(run)
        key, color = escape(item.key), escape(item.color)
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x},{y}" for x, y in run)
                parts.append(
                    f'<polyline class="chart-line chart-series-{key}" points="{points}" '
                    f'fill="none" stroke="{color}" stroke-width="2" '
                    f'stroke-linejoin="round" stroke-linecap="round" pointer-events="none"/>'
                )
        for index, value in enumerate(item.values):
            if value is not None:
                x, y = point(index, value)
                parts.append(
                    f'<circle class="chart-dot chart-series-{key}" cx="{x}" cy="{y}" r="2.5" '
                    f'fill="{color}" data-value="{escape(f"{value:.3f}")}" '
                    f'pointer-events="none"/>'
                )
    highest = ", ".join(
        f"highest {item.name} {value_format(max(v for v in item.values if v is not None))}"
        for item in series
        if any(v is not None for v in item.values)
    )
    desc = _describe(title, starts, bucket, highest)
    return svg(chart_id, title, desc, width, height, "".join(parts), css_class=CSS_CLASS)


# -- the charts of a model's monitoring page ---------------------------------------------------

CALLS = "#4f46e5"
ERRORS = "#dc2626"
P50 = "#4f46e5"
P95 = "#d97706"
P99 = "#dc2626"
COLD = "#0891b2"


def metrics_charts(metrics, *, prefix: str = "metrics") -> dict[str, SafeString]:
    """The three charts of a ModelMetrics: calls and errors, latency, cold starts."""
    starts = [b.start for b in metrics.buckets]
    figures = [b.figures for b in metrics.buckets]
    per = metrics.bucket
    return {
        "calls": bucket_bar_chart(
            starts,
            [
                Series("Calls", "calls", CALLS, [f.calls for f in figures]),
                Series("Errors", "errors", ERRORS, [f.errors for f in figures]),
            ],
            bucket=per,
            chart_id=f"{prefix}-calls",
            title=f"Calls and errors per {per}",
            unit="calls",
        ),
        "latency": bucket_line_chart(
            starts,
            [
                Series("p50", "p50", P50, [f.p50_ms for f in figures]),
                Series("p95", "p95", P95, [f.p95_ms for f in figures]),
                Series("p99", "p99", P99, [f.p99_ms for f in figures]),
            ],
            bucket=per,
            chart_id=f"{prefix}-latency",
            title=f"Latency percentiles per {per}",
        ),
        "cold_starts": bucket_bar_chart(
            starts,
            [Series("Cold starts", "cold", COLD, [f.cold_starts for f in figures])],
            bucket=per,
            chart_id=f"{prefix}-cold-starts",
            title=f"Cold starts per {per}",
            unit="cold starts",
            empty_message="No cold starts in this period",
        ),
    }


# -- the charts of the platform report ---------------------------------------------------------

# How many teams or models the report's ranking chart shows.
TOP_ENTRIES = 10


def platform_charts(report, per_day) -> dict[str, SafeString | None]:
    """Calls and spend per day (billing's day charts), and the most called teams or models
    of `report` when it is not per day."""
    top = (
        sorted(report.rows, key=lambda row: (-row.calls, row.label))[:TOP_ENTRIES]
        if report.group_by in ("team", "model")
        else []
    )
    return {
        "calls": day_bar_chart(
            [(row.key[0], row.calls) for row in per_day.rows],
            chart_id="platform-calls",
            title="Calls per day, every team",
            unit="calls",
            value_format=format_count,
        ),
        "cost": day_bar_chart(
            [(row.key[0], row.total) for row in per_day.rows],
            chart_id="platform-cost",
            title="Spend per day, every team",
            unit="credits",
            empty_message="No charges in this period",
        ),
        "top": horizontal_bar_chart(
            [Bar(row.label, row.calls, f"{format_count(row.errors)} errors") for row in top],
            chart_id="platform-top",
            title=f"Most called {report.group_by}s",
            unit="calls",
            value_format=format_count,
        )
        if top
        else None,
    }
