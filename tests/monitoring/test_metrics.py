"""A model's figures per hour and day, per version and in total, against an independent
computation over generated invocations; the same figures through the API, on the model's
monitoring page and on the owners' dashboard."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client

from monitoring import selectors
from monitoring.selectors import Figures, model_metrics, window

from .world import NOW, Expected, build_world, expected, floor

pytestmark = pytest.mark.django_db

TOLERANCE_MS = 1e-6


@pytest.fixture
def world():
    return build_world()


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_figures(actual: Figures, want: Expected, where: str) -> None:
    assert actual.calls == want.calls, where
    assert actual.errors == want.errors, where
    assert actual.cold_starts == want.cold_starts, where
    if want.error_rate is None:
        assert actual.error_rate is None, where
    else:
        assert actual.error_rate == pytest.approx(want.error_rate), where
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        got, expected = getattr(actual, name), getattr(want, name)
        if expected is None:
            assert got is None, f"{where} {name}"
        else:
            assert got == pytest.approx(expected, abs=TOLERANCE_MS), f"{where} {name}"


@pytest.mark.parametrize("name", ["24h", "7d", "30d"])
def test_every_bucket_and_version_equals_an_independent_computation(world, name):
    current = window(name, now=NOW)
    metrics = model_metrics(
        world.model, start=current.start, end=current.end, bucket=current.bucket
    )
    expected_buckets = world.by_bucket(current.start, current.end, current.bucket)

    assert len(metrics.buckets) == {"24h": 24, "7d": 7, "30d": 30}[name]
    assert metrics.buckets[0].start == current.start
    assert metrics.buckets[-1].start == floor(NOW, current.bucket)
    assert sum(b.figures.calls for b in metrics.buckets) > 20  # the test means something
    for b in metrics.buckets:
        assert_figures(b.figures, expected_buckets.get(b.start, Expected()), f"bucket {b.start}")
    assert_figures(metrics.totals, expected(world.in_range(current.start, current.end)), "total")

    assert [v.version for v in metrics.versions] == sorted(
        {c.version_label for c in world.in_range(current.start, current.end)},
        key=lambda label: tuple(-int(p) for p in label.split(".")),
    )
    for v in metrics.versions:
        calls = world.in_range(current.start, current.end, v.version)
        assert_figures(v.totals, expected(calls), f"version {v.version}")
        per_bucket = world.by_bucket(current.start, current.end, current.bucket, v.version)
        assert len(v.buckets) == len(metrics.buckets)
        for b in v.buckets:
            assert_figures(
                b.figures, per_bucket.get(b.start, Expected()), f"{v.version} at {b.start}"
            )


def test_one_version_only(world):
    current = window("7d", now=NOW)
    metrics = model_metrics(
        world.model, start=current.start, end=current.end, bucket="day", version="1.1.0"
    )
    assert metrics.version == "1.1.0"
    assert [v.version for v in metrics.versions] == ["1.1.0"]
    assert_figures(
        metrics.totals, expected(world.in_range(current.start, current.end, "1.1.0")), "1.1.0"
    )
    per_bucket = world.by_bucket(current.start, current.end, "day", "1.1.0")
    for b in metrics.buckets:
        assert_figures(b.figures, per_bucket.get(b.start, Expected()), f"1.1.0 at {b.start}")


def test_quiet_buckets_are_zero_and_a_never_called_model_has_no_percentiles(world):
    quiet = model_metrics(
        world.model, start=NOW - timedelta(days=400), end=NOW - timedelta(days=399), bucket="hour"
    )
    assert len(quiet.buckets) == 25  # widened to whole hours
    assert all(b.figures == Figures() for b in quiet.buckets)
    assert quiet.totals == Figures() and quiet.versions == []
    assert quiet.totals.error_rate is None


def test_ranges_that_are_too_long_or_backwards_are_refused(world):
    from marketplace.core.errors import InputError

    with pytest.raises(InputError):
        model_metrics(world.model, start=NOW - timedelta(days=40), end=NOW, bucket="hour")
    with pytest.raises(InputError):
        model_metrics(world.model, start=NOW, end=NOW - timedelta(days=1), bucket="day")
    with pytest.raises(InputError):
        model_metrics(world.model, start=NOW - timedelta(days=1), end=NOW, bucket="minute")


# -- the API -------------------------------------------------------------------------------------


def test_the_metrics_api_gives_the_same_figures_to_owners_only(world, fixed_now):
    url = "/v1/models/acme/vision/metrics"
    client = browser(world.owner)
    body = client.get(url, {"bucket": "day", "start": "2025-05-08", "end": NOW.isoformat()})
    assert body.status_code == 200, body.content
    data = body.json()
    start = NOW.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    end = start + timedelta(days=7)
    assert data["bucket"] == "day" and len(data["buckets"]) == 7
    assert data["start"].startswith("2025-05-08T00:00:00")
    want = expected(world.in_range(start, end))
    assert data["totals"]["calls"] == want.calls
    assert data["totals"]["p95_ms"] == pytest.approx(want.p95_ms, abs=TOLERANCE_MS)
    per_bucket = world.by_bucket(start, end, "day")
    for b in data["buckets"]:
        moment = next(m for m in per_bucket if m.isoformat().startswith(b["start"][:10]))
        assert b["calls"] == per_bucket[moment].calls
        assert b["p99_ms"] == pytest.approx(per_bucket[moment].p99_ms, abs=TOLERANCE_MS)
    assert {v["version"] for v in data["versions"]} == {"1.0.0", "1.1.0", "2.0.0"}

    by_version = client.get(url, {"bucket": "hour", "version": "2.0.0"}).json()
    assert by_version["version"] == "2.0.0" and len(by_version["buckets"]) == 25
    assert [v["version"] for v in by_version["versions"]] == ["2.0.0"]

    assert browser(world.caller).get(url).status_code == 404
    assert browser(world.outsider).get(url).status_code == 404
    assert Client().get(url).status_code == 401
    bad = client.get(url, {"bucket": "week"})
    assert bad.status_code == 400 and bad.json()["error"]["error_type"] == "InputError"
    assert client.get(url, {"start": "yesterday"}).status_code == 400


# -- the pages -----------------------------------------------------------------------------------


def _number(text: str) -> float | None:
    text = unescape(text).strip()
    if text == "\N{EN DASH}":
        return None
    return float(text.removesuffix(" ms").removesuffix("%").replace(",", ""))


def _cells(html: str, row_attr: str, value: str) -> dict[str, float | None]:
    match = re.search(rf'<tr {row_attr}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert match, f"no row {row_attr}={value}"
    return {
        name: _number(text)
        for name, text in re.findall(
            r'<td class="num" data-stat="([a-z0-9-]+)">([^<]*)</td>', match[1]
        )
    }


def assert_row(cells: dict, want: Expected, where: str) -> None:
    assert cells["calls"] == want.calls, where
    assert cells["errors"] == want.errors, where
    assert cells["cold-starts"] == want.cold_starts, where
    if want.error_rate is None:
        assert cells["error-rate"] is None, where
    else:  # shown with one decimal place
        assert cells["error-rate"] == pytest.approx(100 * want.error_rate, abs=0.0501), where
    for name in ("p50", "p95", "p99"):
        value = getattr(want, f"{name}_ms")
        if value is None:
            assert cells[name] is None, f"{where} {name}"
        else:  # shown with one decimal place
            assert cells[name] == pytest.approx(value, abs=0.0501), f"{where} {name}"


def test_the_monitoring_page_shows_every_figure(world, fixed_now):
    response = browser(world.owner).get("/acme/vision/monitoring")
    assert response.status_code == 200
    html = response.content.decode()
    current = window("24h", now=NOW)
    per_bucket = world.by_bucket(current.start, current.end, "hour")
    shown = 0
    for moment in selectors.bucket_starts(current.start, current.end, "hour"):
        cells = _cells(html, "data-bucket", moment.isoformat())
        assert_row(cells, per_bucket.get(moment, Expected()), f"hour {moment}")
        shown += 1
    assert shown == 24
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        want = expected(world.in_range(current.start, current.end, version))
        assert_row(_cells(html, "data-version", version), want, version)
    # The charts are on the page, drawn on the server.
    for chart in ("metrics-calls", "metrics-latency", "metrics-cold-starts"):
        assert f'<svg class="chart monitoring-chart" id="{chart}"' in html
    assert html.count('class="chart-line chart-series-p95"') >= 1


def test_the_page_filters_by_version_and_window(world, fixed_now):
    client = browser(world.owner)
    html = client.get("/acme/vision/monitoring", {"window": "30d", "version": "1.0.0"}).content
    html = html.decode()
    current = window("30d", now=NOW)
    per_bucket = world.by_bucket(current.start, current.end, "day", "1.0.0")
    for moment in selectors.bucket_starts(current.start, current.end, "day"):
        assert_row(
            _cells(html, "data-bucket", moment.isoformat()),
            per_bucket.get(moment, Expected()),
            f"day {moment}",
        )
    assert '<option value="1.0.0" selected>' in html
    assert 'data-version="1.1.0"' not in html
    bad = client.get("/acme/vision/monitoring", {"window": "1y"})
    assert bad.status_code == 200 and "window: one of 24h, 7d, 30d" in bad.content.decode()


def test_the_dashboard_lists_each_model_with_its_figures(world, fixed_now):
    response = browser(world.owner).get("/dashboard/", {"window": "7d"})
    assert response.status_code == 200
    html = response.content.decode()
    current = window("7d", now=NOW)
    want = expected(world.in_range(current.start, current.end))
    assert_row(_cells(html, "data-model", "acme/vision"), want, "vision")
    assert html.index('data-model="acme/vision"') < html.index('data-model="acme/other"')
    other = _cells(html, "data-model", "acme/other")
    assert other["calls"] > 0
    # A caller's own namespace owns no model: nothing of acme's shows to them.
    caller_html = browser(world.caller).get("/dashboard/").content.decode()
    assert "acme/vision" not in caller_html


def test_owner_dashboard_sorts_by_calls(world):
    board = selectors.owner_dashboard(world.owners, start=NOW - timedelta(days=40), end=NOW)
    calls = [row.figures.calls for row in board.models]
    assert calls == sorted(calls, reverse=True)
    assert [row.model.slug for row in board.models] == ["vision", "other"]


def _mini_stat(html: str, name: str) -> float | None:
    match = re.search(rf'<dd (?:class="mono" )?data-stat="monitoring-{name}">([^<]*)</dd>', html)
    assert match, name
    return _number(match[1])


def test_the_model_page_shows_its_owners_the_last_24_hours(world, fixed_now):
    html = browser(world.owner).get("/acme/vision").content.decode()
    current = window("24h", now=NOW)
    want = expected(world.in_range(current.start, current.end))
    assert _mini_stat(html, "calls") == want.calls
    assert _mini_stat(html, "cold-starts") == want.cold_starts
    assert _mini_stat(html, "error-rate") == pytest.approx(100 * want.error_rate, abs=0.0501)
    for name in ("p50", "p95", "p99"):
        assert _mini_stat(html, name) == pytest.approx(getattr(want, f"{name}_ms"), abs=0.0501)
    assert 'href="/acme/vision/monitoring"' in html
    assert 'href="/acme/vision/monitoring/errors"' in html
    for outsider in (world.caller, world.outsider):
        page = browser(outsider).get("/acme/vision").content.decode()
        assert 'id="monitoring"' not in page and "/acme/vision/monitoring" not in page
    assert 'id="monitoring"' not in Client().get("/acme/vision").content.decode()


def test_the_api_schema_documents_the_monitoring_endpoints(client):
    paths = client.get("/v1/schema", HTTP_ACCEPT="application/json").json()["paths"]
    for path in (
        "/v1/models/{owner}/{name}/metrics",
        "/v1/models/{owner}/{name}/errors",
        "/v1/platform/usage",
    ):
        assert "get" in paths[path], path
