"""Server-side SVG charts for the billing pages (and the platform report): a bar per day (cost,
calls, royalties) and horizontal bars per model, on the pieces of marketplace/core/charts.py.
Plain string building, every text escaped, the same input always giving the same bytes. Each
chart is an image with a name and a description for screen readers, a <title> tooltip per
bar, and says "no usage" rather than drawing an empty axis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString

from marketplace.core.charts import (
    EMPTY_HEIGHT,
    TEXT,
    TICKS,
    Number,
    empty_chart,
    gridlines,
    nice_step,
    px,
    svg,
)

from .formatting import format_credits, format_day

ACCENT = "#4f46e5"
MAX_DAY_LABELS = 8
LABEL_CHARS = 28
WIDE = 480


@dataclass(frozen=True)
class Bar:
    label: str
    value: Number
    note: str = ""


def day_bar_chart(
    series: Sequence[tuple[date, Number]],
    *,
    chart_id: str,
    title: str,
    unit: str,
    value_format: Callable[[Number], str] = format_credits,
    empty_message: str = "No usage in this period",
    width: int = 960,
    height: int = 280,
    max_labels: int = MAX_DAY_LABELS,
) -> SafeString:
    """One bar per day, scaled to a rounded axis with gridlines, a total, and a tooltip per
    day. `series` lists every day of the range in order (zero days included)."""
    series = list(series)
    total = sum((value for _, value in series), Decimal(0) if _money(series) else 0)
    period = _period(series)
    if not series or not any(value for _, value in series):
        desc = f"{title}: {empty_message.lower()}{period}."
        return empty_chart(chart_id, title, desc, width, EMPTY_HEIGHT, empty_message)

    left, right, top, bottom = 64, 12, 34, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak_day, peak = max(series, key=lambda point: (point[1], -point[0].toordinal()))
    step = nice_step(peak, integer=not _money(series))
    axis_max = step * TICKS
    parts = [
        f'<text class="chart-total" x="{left}" y="18" fill="{TEXT}" font-size="13" '
        f'font-weight="600">{escape(f"Total {value_format(total)} {unit}")}</text>'
    ]
    if width >= WIDE:  # a narrow chart has no room for it; the total and tooltips say it
        parts.append(
            f'<text class="chart-unit" x="{width - right}" y="18" text-anchor="end" '
            f'fill="{TEXT}" font-size="11">{escape(unit)} per day (UTC)</text>'
        )
    parts += gridlines(
        step=step,
        axis_max=axis_max,
        left=left,
        right=right,
        top=top,
        plot_h=plot_h,
        width=width,
        tick_text=value_format,
    )
    slot = Decimal(plot_w) / len(series)
    bar_w = slot * Decimal("0.72") if len(series) > 1 else min(slot, Decimal(48))
    label_every = -(-len(series) // max_labels)
    for index, (day, value) in enumerate(series):
        x = left + slot * index
        bar_h = Decimal(plot_h) * Decimal(value) / axis_max
        bar_x = x + (slot - bar_w) / 2
        tip = f"{day.isoformat()}: {value_format(value)} {unit}"
        parts.append(
            f'<g class="chart-day"><title>{escape(tip)}</title>'
            f'<rect class="chart-hit" x="{px(x)}" y="{top}" width="{px(slot)}" '
            f'height="{plot_h}" fill="transparent"/>'
            f'<rect class="chart-bar" x="{px(bar_x)}" y="{px(top + plot_h - bar_h)}" '
            f'width="{px(bar_w)}" height="{px(bar_h)}" fill="{ACCENT}" '
            f'data-value="{escape(str(value))}"/></g>'
        )
        if index % label_every == 0:
            parts.append(
                f'<text class="chart-label" x="{px(x + slot / 2)}" y="{top + plot_h + 16}" '
                f'text-anchor="middle" fill="{TEXT}" font-size="11">'
                f"{escape(format_day(day))}</text>"
            )
    parts.append(
        f'<text class="chart-axis-label" x="{left + plot_w // 2}" y="{height - 6}" '
        f'text-anchor="middle" fill="{TEXT}" font-size="11">Day</text>'
    )
    desc = (
        f"{title}{period}: total {value_format(total)} {unit}; highest "
        f"{value_format(peak)} {unit} on {peak_day.isoformat()}."
    )
    return svg(chart_id, title, desc, width, height, "".join(parts))


def horizontal_bar_chart(
    bars: Sequence[Bar],
    *,
    chart_id: str,
    title: str,
    unit: str,
    value_format: Callable[[Number], str] = format_credits,
    empty_message: str = "No usage in this period",
    width: int = 960,
    row_height: int = 30,
) -> SafeString:
    """One labelled bar per item, the largest spanning the plot; the value (and the item's
    note) is written after each bar and in its tooltip."""
    bars = list(bars)
    if not bars or not any(bar.value for bar in bars):
        desc = f"{title}: {empty_message.lower()}."
        return empty_chart(chart_id, title, desc, width, EMPTY_HEIGHT, empty_message)
    label_w, value_w, top = 220, 280, 8
    plot_w = width - label_w - value_w
    height = top * 2 + row_height * len(bars)
    peak = max(Decimal(bar.value) for bar in bars)
    parts = []
    for index, bar in enumerate(bars):
        y = top + row_height * index
        length = Decimal(plot_w) * Decimal(bar.value) / peak
        shown = bar.label if len(bar.label) <= LABEL_CHARS else bar.label[: LABEL_CHARS - 1] + "…"
        figure = f"{value_format(bar.value)} {unit}"
        tip = f"{bar.label}: {figure}" + (f" · {bar.note}" if bar.note else "")
        mid = y + row_height // 2
        parts.append(
            f'<g class="chart-item"><title>{escape(tip)}</title>'
            f'<text class="chart-label" x="{label_w - 8}" y="{mid}" text-anchor="end" '
            f'dominant-baseline="middle" fill="{TEXT}" font-size="12">{escape(shown)}</text>'
            f'<rect class="chart-bar" x="{label_w}" y="{y + 5}" width="{px(length)}" '
            f'height="{row_height - 10}" rx="3" fill="{ACCENT}" '
            f'data-value="{escape(str(bar.value))}"/>'
            f'<text class="chart-value" x="{px(label_w + length + 6)}" y="{mid}" '
            f'dominant-baseline="middle" fill="{TEXT}" font-size="12">'
            f"{escape(figure + (f' · {bar.note}' if bar.note else ''))}</text></g>"
        )
    listed = "; ".join(f"{bar.label} {value_format(bar.value)} {unit}" for bar in bars)
    return svg(chart_id, title, f"{title}: {listed}.", width, height, "".join(parts))


def _money(series) -> bool:
    return any(isinstance(value, Decimal) for _, value in series)


def _period(series) -> str:
    if not series:
        return ""
    return f" from {series[0][0].isoformat()} to {series[-1][0].isoformat()}"
