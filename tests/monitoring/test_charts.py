"""The monitoring charts: the same figures give the same bytes, every text is escaped, each
chart is a named and described image, bars and lines are where the figures put them, and a
bucket without calls breaks the latency lines instead of drawing a zero."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from monitoring.charts import (
    Series,
    bucket_bar_chart,
    bucket_line_chart,
    bucket_name,
    format_ms,
)

START = datetime(2025, 5, 13, 22, tzinfo=UTC)
HOURS = [START + timedelta(hours=i) for i in range(6)]
SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(str(svg))  # noqa: S314 - our own output


def calls_chart(calls, errors, **kwargs):
    return bucket_bar_chart(
        HOURS,
        [Series("Calls", "calls", "#111", calls), Series("Errors", "errors", "#f00", errors)],
        bucket="hour",
        chart_id=kwargs.pop("chart_id", "c"),
        title=kwargs.pop("title", "Calls and errors per hour"),
        unit="calls",
        **kwargs,
    )


def test_bars_are_deterministic_accessible_and_scaled():
    svg = calls_chart([10, 0, 40, 5, 0, 20], [1, 0, 10, 0, 0, 20])
    assert svg == calls_chart([10, 0, 40, 5, 0, 20], [1, 0, 10, 0, 0, 20])
    root = parse(svg)
    assert root.get("role") == "img" and root.get("aria-label") == "Calls and errors per hour"
    assert root.find(f"{SVG}title").text == "Calls and errors per hour"
    desc = root.find(f"{SVG}desc").text
    assert "75 calls in all" in desc and "31 errors in all" in desc
    assert "2025-05-13 22:00 to 23:00 UTC" in desc
    buckets = root.findall(f"{SVG}g[@class='chart-bucket']")
    assert [b.get("data-bucket") for b in buckets] == [h.isoformat() for h in HOURS]
    assert buckets[2].find(f"{SVG}title").text == (
        "2025-05-14 00:00 to 01:00 UTC: 40 calls, 10 errors"
    )
    heights = {
        (b.get("data-bucket"), r.get("class").split()[-1]): float(r.get("height"))
        for b in buckets
        for r in b.findall(f"{SVG}rect")
        if "chart-series" in (r.get("class") or "")
    }
    tallest = heights[(HOURS[2].isoformat(), "chart-series-calls")]
    assert heights[(HOURS[5].isoformat(), "chart-series-calls")] == pytest.approx(tallest / 2)
    assert heights[(HOURS[5].isoformat(), "chart-series-errors")] == pytest.approx(tallest / 2)
    assert heights[(HOURS[1].isoformat(), "chart-series-calls")] == 0
    # Labels: the hour, and the day at midnight.
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels == ["22:00", "23:00", "May 14", "01:00", "02:00", "03:00"]


def test_every_text_is_escaped():
    svg = calls_chart([1] * 6, [0] * 6, chart_id='x"><script>', title="<b>Calls</b> & co")
    assert "<script>" not in svg and "<b>" not in svg
    root = parse(svg)  # still well-formed XML
    assert root.find(f"{SVG}title").text == "<b>Calls</b> & co"
    line = bucket_line_chart(
        HOURS,
        [Series("<p50>", "p50", "#000", [1.0] * 6)],
        bucket="hour",
        chart_id="l",
        title="t",
    )
    assert "<p50>" not in line and "&lt;p50&gt;" in line
    parse(line)


def test_nothing_to_draw_says_so():
    root = parse(calls_chart([0] * 6, [0] * 6))
    assert root.find(f"{SVG}text").text == "No calls in this period"
    assert "no calls in this period" in root.find(f"{SVG}desc").text
    empty = bucket_line_chart(
        HOURS, [Series("p50", "p50", "#000", [None] * 6)], bucket="hour", chart_id="l", title="t"
    )
    assert "No calls in this period" in empty


def test_latency_lines_break_where_a_bucket_had_no_calls():
    values = [12.5, 20.0, None, 30.0, 25.0, None]
    svg = bucket_line_chart(
        HOURS,
        [
            Series("p50", "p50", "#00f", values),
            Series("p99", "p99", "#f00", [v * 4 if v else None for v in values]),
        ],
        bucket="hour",
        chart_id="lat",
        title="Latency percentiles per hour",
    )
    assert svg == bucket_line_chart(
        HOURS,
        [
            Series("p50", "p50", "#00f", values),
            Series("p99", "p99", "#f00", [v * 4 if v else None for v in values]),
        ],
        bucket="hour",
        chart_id="lat",
        title="Latency percentiles per hour",
    )
    root = parse(svg)
    lines = [p for p in root.iter(f"{SVG}polyline") if "chart-series-p50" in p.get("class")]
    assert [len(p.get("points").split()) for p in lines] == [2, 2]
    dots = [c for c in root.iter(f"{SVG}circle") if "chart-series-p99" in c.get("class")]
    assert [float(c.get("data-value")) for c in dots] == [50.0, 80.0, 120.0, 100.0]
    # The highest p99 (120 ms) sits highest; y grows downwards.
    ys = [float(c.get("cy")) for c in dots]
    assert min(ys) == ys[2]
    tips = [g.find(f"{SVG}title").text for g in root.findall(f"{SVG}g[@class='chart-bucket']")]
    assert tips[2] == "2025-05-14 00:00 to 01:00 UTC: p50 \N{EN DASH}, p99 \N{EN DASH}"
    assert tips[0].endswith("p50 12.5 ms, p99 50.0 ms")
    assert "highest p99 120.0 ms" in root.find(f"{SVG}desc").text
    legend = [
        g.find(f"{SVG}text").text
        for g in root.iter(f"{SVG}g")
        if "chart-legend" in (g.get("class") or "")
    ]
    assert legend == ["p50", "p99"]


def test_day_buckets_and_formats():
    days = [datetime(2025, 5, d, tzinfo=UTC) for d in (1, 2, 3)]
    svg = bucket_bar_chart(
        days,
        [Series("Cold starts", "cold", "#0aa", [1, 2, 3])],
        bucket="day",
        chart_id="d",
        title="t",
        unit="cold starts",
    )
    labels = re.findall(r'class="chart-label"[^>]*>([^<]*)<', str(svg))
    assert labels == ["May 1", "May 2", "May 3"]
    assert bucket_name(days[0], "day") == "2025-05-01"
    assert format_ms(1234.56) == "1,234.6 ms" and format_ms(None) == "\N{EN DASH}"
    assert format_ms(0.04) == "0.0 ms"
