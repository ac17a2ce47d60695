"""Server-side SVG charts: what every chart of the site shares (billing's usage charts,
monitoring's per-bucket charts). Plain string building, every text escaped, the same input
always giving the same bytes. Each chart is an image with a name and a description for screen
readers, and says what is missing rather than drawing an empty axis."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

Number = int | Decimal
GRID = "#e2e8f0"
AXIS = "#cbd5e1"
TEXT = "#5b6b80"
TICKS = 4
EMPTY_HEIGHT = 120


def px(value) -> str:
    """A coordinate with two places, the same on every platform."""
    text = f"{Decimal(str(value)).quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def nice_step(maximum: Number, *, integer: bool, ticks: int = TICKS) -> Decimal:
    """A gridline step of 1, 2, 2.5 or 5 times a power of ten, so `ticks` steps reach at
    least `maximum`; whole numbers only for counts."""
    raw = Decimal(maximum) / ticks
    magnitude = Decimal(1).scaleb(raw.adjusted())
    for multiple in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        step = magnitude * multiple
        if integer and step != step.to_integral_value():
            continue
        if step >= raw:
            return max(step, Decimal(1)) if integer else step
    return magnitude * 10  # pragma: no cover - 10 x magnitude always reaches raw


def gridlines(
    *,
    step: Decimal,
    axis_max: Decimal,
    left: int,
    right: int,
    top: int,
    plot_h: int,
    width: int,
    tick_text: Callable[[Decimal], str],
) -> list[str]:
    """The axis and TICKS gridlines above it, `step` apart, each with its tick label."""
    parts = []
    for i in range(TICKS + 1):
        tick = step * i
        y = top + plot_h - plot_h * tick / axis_max
        parts.append(
            f'<line class="{"chart-axis" if i == 0 else "chart-grid"}" x1="{left}" '
            f'x2="{width - right}" y1="{px(y)}" y2="{px(y)}" '
            f'stroke="{AXIS if i == 0 else GRID}" stroke-width="1"/>'
            f'<text class="chart-tick" x="{left - 6}" y="{px(y)}" text-anchor="end" '
            f'dominant-baseline="middle" fill="{TEXT}" font-size="11">'
            f"{escape(tick_text(tick))}</text>"
        )
    return parts


def svg(
    chart_id: str,
    title: str,
    desc: str,
    width: int,
    height: int,
    body: str,
    *,
    css_class: str = "chart",
) -> SafeString:
    cid = escape(chart_id)
    return mark_safe(  # noqa: S308 - every text in it went through escape()
        f'<svg class="{css_class}" id="{cid}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" aria-describedby="{cid}-desc" '
        f'preserveAspectRatio="xMinYMin meet">'
        f'<title id="{cid}-title">{escape(title)}</title>'
        f'<desc id="{cid}-desc">{escape(desc)}</desc>{body}</svg>'
    )


def empty_chart(
    chart_id: str,
    title: str,
    desc: str,
    width: int,
    height: int,
    message: str,
    *,
    css_class: str = "chart",
) -> SafeString:
    """A chart with nothing to draw: `message` in its middle instead of an empty axis."""
    body = (
        f'<text class="chart-empty" x="{width // 2}" y="{height // 2}" text-anchor="middle" '
        f'dominant-baseline="middle" fill="{TEXT}" font-size="14">{escape(message)}</text>'
    )
    return svg(chart_id, title, desc, width, height, body, css_class=css_class)
