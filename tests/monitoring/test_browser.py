"""The monitoring pages in Chromium: the charts drawn on the server show up, tooltips name
the buckets, and the pages run without a JavaScript or console error (screenshots go to the
test artifacts)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import browser, open_page, page, screenshot, sign_in, site  # noqa: F401

from .world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(transactional_db):
    return build_world(calls=300, now=timezone.now())


def test_the_monitoring_page_draws_its_charts(page, sign_in, screenshot, world):  # noqa: F811
    from playwright.sync_api import expect

    sign_in(page, world.owner, next="/acme/vision/monitoring")
    for chart in ("#metrics-calls", "#metrics-latency", "#metrics-cold-starts"):
        expect(page.locator(chart)).to_be_visible()
        box = page.locator(chart).bounding_box()
        assert box["width"] > 600 and box["height"] > 150, chart
    assert page.locator("#metrics-calls .chart-bucket .chart-series-calls").count() == 24
    assert page.locator("#metrics-latency polyline.chart-series-p95").count() >= 1
    screenshot(page, "24h")
    page.select_option("#window", "30d")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#metrics-calls .chart-bucket .chart-series-calls")).to_have_count(30)
    screenshot(page, "30d")
    page.get_by_role("link", name="Errors").first.click()
    expect(page.locator("[data-table=errors] tbody tr").first).to_be_visible()
    page.locator("[data-table=errors] details summary").first.click()
    expect(page.locator("[data-field=stacktrace]").first).to_be_visible()
    screenshot(page, "errors")


def test_the_dashboard_and_model_card(page, sign_in, world):  # noqa: F811
    from playwright.sync_api import expect

    sign_in(page, world.owner, next="/dashboard/")
    expect(page.locator('tr[data-model="acme/vision"]')).to_be_visible()
    page.goto("/acme/vision")
    expect(page.locator("#monitoring")).to_be_visible()


def test_the_platform_report(page, sign_in, world):  # noqa: F811
    from playwright.sync_api import expect

    from tests.billing.factories import UsageRecordFactory
    from tests.factories import UserFactory

    today = timezone.now()
    for index in range(40):
        UsageRecordFactory(
            team=world.caller_team if index % 3 else world.owners,
            model=world.model if index % 2 else world.other_model,
            started_at=today - timedelta(days=index % 9, minutes=5),
        )
    staff = UserFactory(username="operator", is_staff=True)
    sign_in(page, staff, next="/admin-report/")
    expect(page.locator("#platform-calls")).to_be_visible()
    expect(page.locator("#platform-top")).to_be_visible()
    expect(page.locator('tr[data-row="globex"]')).to_be_visible()
    page.get_by_role("link", name="Model", exact=True).click()
    expect(page.locator('tr[data-row="acme/vision"]')).to_be_visible()
    # Choosing a date makes the period custom, and the report covers those days.
    page.get_by_role("link", name="Day", exact=True).click()
    start = (today - timedelta(days=2)).date().isoformat()
    page.fill("#start", start)
    page.locator("#start").dispatch_event("change")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#range")).to_have_value("custom")
    expect(page.locator(f'tr[data-row="{start}"]')).to_be_visible()
    expect(page.locator("table[data-table=platform] tbody tr")).to_have_count(3)
