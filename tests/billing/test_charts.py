"""The SVG charts: well-formed, accessible, deterministic, bars proportional to values, an
honest "no usage" state, and every text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest

from billing.charts import Bar, day_bar_chart, horizontal_bar_chart, nice_step
from billing.formatting import format_count, format_credits, format_seconds

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg"
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [el for el in root.iter(f"{SVG}rect") if el.get("class") == "chart-bar"]


def days(values, start=date(2025, 4, 1)):
    return [(start + timedelta(days=i), v) for i, v in enumerate(values)]


def test_day_bars_are_proportional_to_their_values():
    values = [Decimal("0.5"), Decimal("2.25"), Decimal(0), Decimal("1.000001"), Decimal(3)]
    root = parse(day_bar_chart(days(values), chart_id="c", title="Cost per day", unit="credits"))
    heights = [Decimal(bar.get("height")) for bar in bars(root)]
    assert len(heights) == len(values)
    assert heights[2] == 0
    scale = heights[4] / values[4]
    for height, value in zip(heights, values, strict=True):
        assert abs(height - value * scale) <= Decimal("0.01")
    # Bars stand on the same baseline.
    baselines = {Decimal(b.get("y")) + Decimal(b.get("height")) for b in bars(root)}
    assert max(baselines) - min(baselines) <= Decimal("0.02")
    assert [b.get("data-value") for b in bars(root)] == [str(v) for v in values]


def test_the_axis_reaches_past_the_highest_bar_with_round_gridlines():
    chart = day_bar_chart(
        days([3, 7, 1]), chart_id="c", title="Calls", unit="calls", value_format=format_count
    )
    root = parse(chart)
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert ticks == ["0", "2", "4", "6", "8"]
    grid = [el for el in root.iter(f"{SVG}line") if el.get("class") == "chart-grid"]
    assert len(grid) == 4


@pytest.mark.parametrize(
    ("maximum", "integer", "step"),
    [
        (Decimal(7), True, Decimal(2)),
        (3, True, Decimal(1)),
        (1, True, Decimal(1)),
        (Decimal("0.000123"), False, Decimal("0.00005")),
        (Decimal(100), False, Decimal(25)),
        (Decimal("9.9"), False, Decimal("2.5")),
        (Decimal(1001), True, Decimal(500)),
    ],
)
def test_nice_steps(maximum, integer, step):
    assert nice_step(maximum, integer=integer) == step
    assert nice_step(maximum, integer=integer) * 4 >= maximum


def test_totals_tooltips_and_accessible_names():
    series = days([Decimal("1.5"), Decimal("2.25")])
    root = parse(day_bar_chart(series, chart_id="cost", title="Cost per day", unit="credits"))
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Cost per day"
    assert root.get("aria-describedby") == "cost-desc"
    desc = root.find(f"{SVG}desc").text
    assert "total 3.75 credits" in desc and "highest 2.25 credits on 2025-04-02" in desc
    total = next(t for t in root.iter(f"{SVG}text") if t.get("class") == "chart-total")
    assert total.text == "Total 3.75 credits"
    tips = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g")]
    assert tips == ["2025-04-01: 1.50 credits", "2025-04-02: 2.25 credits"]
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels == ["Apr 1", "Apr 2"]


def test_long_ranges_label_some_days_only():
    root = parse(day_bar_chart(days([1] * 90), chart_id="c", title="Calls", unit="calls"))
    labels = [t for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert 1 < len(labels) <= 8
    assert len(bars(root)) == 90


@pytest.mark.parametrize("series", [[], days([0, 0, 0]), days([Decimal(0)] * 30)])
def test_no_usage_is_said_not_drawn(series):
    svg = day_bar_chart(
        series, chart_id="c", title="Cost per day", unit="credits", empty_message="No usage yet"
    )
    root = parse(svg)
    assert not bars(root)
    assert not list(root.iter(f"{SVG}line"))
    empty = [t for t in root.iter(f"{SVG}text") if t.get("class") == "chart-empty"]
    assert [t.text for t in empty] == ["No usage yet"]
    assert root.get("role") == "img" and "no usage yet" in root.find(f"{SVG}desc").text


def test_every_text_is_escaped():
    nasty = '<script>alert("x")</script> & "quotes"'
    svg = day_bar_chart(days([1, 2]), chart_id='c" onload="x', title=nasty, unit=nasty)
    svg += horizontal_bar_chart(
        [Bar(nasty, Decimal(1), nasty)], chart_id="h", title=nasty, unit="credits"
    )
    svg += day_bar_chart([], chart_id="e", title=nasty, unit="calls", empty_message=nasty)
    assert "<script>" not in svg
    assert '" onload="' not in svg
    assert "&lt;script&gt;" in svg and "&amp;" in svg
    for chunk in svg.split("</svg>")[:-1]:
        parse(chunk + "</svg>")


def test_charts_are_deterministic():
    series = days([Decimal("0.000123"), Decimal("12.5"), Decimal(0)])
    items = [Bar("acme/sentiment", 12, "0.5 credits"), Bar("acme/translate", 3)]
    first = day_bar_chart(series, chart_id="c", title="t", unit="credits")
    assert first == day_bar_chart(list(series), chart_id="c", title="t", unit="credits")
    h = horizontal_bar_chart(items, chart_id="h", title="t", unit="calls", value_format=str)
    assert h == horizontal_bar_chart(
        list(items), chart_id="h", title="t", unit="calls", value_format=str
    )


def test_horizontal_bars_are_proportional_and_labelled():
    items = [
        Bar("acme/sentiment", Decimal("4.0"), "120 calls"),
        Bar("acme/a-model-with-a-very-long-name-indeed", Decimal("1.0")),
        Bar("acme/free", Decimal(0)),
    ]
    root = parse(
        horizontal_bar_chart(items, chart_id="top", title="Top models by cost", unit="credits")
    )
    widths = [Decimal(b.get("width")) for b in bars(root)]
    assert widths[1] * 4 == widths[0] and widths[2] == 0
    shown = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert shown[0] == "acme/sentiment"
    assert shown[1].endswith("…") and len(shown[1]) == 28
    tips = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g")]
    assert tips[0] == "acme/sentiment: 4.00 credits · 120 calls"
    assert tips[1] == "acme/a-model-with-a-very-long-name-indeed: 1.00 credits"
    assert "acme/sentiment 4.00 credits" in root.find(f"{SVG}desc").text


def test_horizontal_chart_without_usage():
    root = parse(horizontal_bar_chart([], chart_id="top", title="Top", unit="credits"))
    assert not bars(root)
    assert "No usage in this period" in ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1234.5"), "1,234.50"),
        (Decimal("0.000123"), "0.000123"),
        (Decimal("0"), "0.00"),
        (Decimal("1234567.123400"), "1,234,567.1234"),
        (Decimal("0.0000004"), "0.00"),
    ],
)
def test_credit_format(value, text):
    assert format_credits(value) == text


def test_count_and_seconds_format():
    assert format_count(1234567) == "1,234,567"
    assert format_seconds(Decimal("12.500")) == "12.5"
    assert format_seconds(Decimal("1200.000")) == "1,200"
