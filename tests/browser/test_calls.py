"""The Calls page in a real browser, at desktop and at phone width: reached from the team
page and the navigation, a call and a refused call with its reason, the filters, the link to
the request's page with the input and output its caller asked to keep, and a 404 for anyone
outside the team."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import CHROMIUM, NO_CHROMIUM

if CHROMIUM is None:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")

from playwright.sync_api import expect

from tests.factories import make_key
from tests.gateway.conftest import key_client

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def history(sentiment, owner):
    """ada's calls: one kept (keep_io=true), one not, and one refused by a key's scopes."""
    kept = key_client(owner).post(
        "/v1/algo/ada/sentiment?keep_io=true", {"text": "I love it"}, format="json"
    )
    assert kept.status_code == 200, kept.content
    plain = key_client(owner).post("/v1/algo/ada/sentiment", {"text": "meh"}, format="json")
    assert plain.status_code == 200, plain.content
    _, narrow = make_key(owner, name="narrow", scopes=["algo://someone/*"])
    refused = key_client(owner)
    refused.credentials(HTTP_AUTHORIZATION=f"Simple {narrow}")
    assert refused.post("/v1/algo/ada/sentiment", {}, format="json").status_code == 403
    return {"kept": kept.json()["request_id"], "plain": plain.json()["request_id"]}


def _no_page_overflow(page) -> None:
    """Nothing but a table's own scroller is wider than the screen."""
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 1, f"the page is {wide}px wider than the screen"


def test_calls_from_the_team_page_to_a_kept_request(page, owner, history, sign_in, screenshot):
    sign_in(page, owner, next="/teams/ada/")
    page.locator("[data-link=team-calls]").click()
    expect(page).to_have_url(re.compile(r"/teams/ada/calls/$"))
    table = page.locator("[data-table=calls]")
    expect(table.locator("tr[data-row=c]")).to_have_count(2)
    refused = table.locator("tr[data-row=r]")
    expect(refused).to_have_count(1)
    expect(refused.locator("[data-field=reason]")).to_have_text("AuthorizationError")
    expect(refused.locator("[data-field=message]")).to_contain_text("algo://someone/*")
    kept_row = table.locator(f"tr[data-request-id='{history['kept']}']")
    expect(kept_row.locator("[data-field=model]")).to_have_text("ada/sentiment")
    expect(kept_row.locator("[data-field=status]")).to_contain_text("Succeeded")
    expect(kept_row.locator("[data-field=status]")).to_contain_text("kept")
    expect(kept_row.locator("[data-field=duration]")).to_contain_text(" s")
    screenshot(page, "calls-desktop")

    page.get_by_label("Status").select_option("refused")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=refused"))
    expect(table.locator("tr[data-row=c]")).to_have_count(0)
    expect(table.locator("tr[data-row=r]")).to_have_count(1)
    screenshot(page, "calls-refused")

    page.goto("/teams/ada/calls/")
    kept_row.locator("[data-field=request]").click()
    expect(page).to_have_url(re.compile(rf"/requests/\?id={history['kept']}$"))
    expect(page.locator("[data-field=kept-input]")).to_have_text('{"text": "I love it"}')
    expect(page.locator("[data-field=kept-output]")).to_contain_text('"label": "positive"')
    screenshot(page, "kept-request")
    page.goto(f"/requests/?id={history['plain']}")
    expect(page.locator("#invocation")).to_be_visible()
    expect(page.locator("[data-field=kept]")).to_have_count(0)


def test_calls_at_phone_width_from_the_menu(open_page, owner, history, sign_in, screenshot):
    page = open_page(viewport=PHONE)
    sign_in(page, owner, next="/")
    page.locator("details.mobile-menu > summary").click()
    page.get_by_role("navigation", name="Main (compact)").get_by_role("link", name="Calls").click()
    expect(page).to_have_url(re.compile(r"/teams/ada/calls/$"))
    expect(page.locator("[data-table=calls] tr[data-row=c]")).to_have_count(2)
    _no_page_overflow(page)
    screenshot(page, "calls-phone")
    page.goto("/teams/ada/calls/?model=ada/nothing")
    expect(page.locator("[data-empty=calls]")).to_have_text("No calls match these filters.")
    _no_page_overflow(page)

    page.goto("/keys/")
    page.locator("tr", has_text="narrow").locator("[data-link=key-calls]").click()
    expect(page).to_have_url(re.compile(r"/teams/ada/keys/[0-9a-f-]{36}/calls/$"))
    expect(page.locator("[data-table=calls] tr[data-row=r]")).to_have_count(1)
    expect(page.locator("[data-table=calls] tr[data-row=c]")).to_have_count(0)
    expect(page.locator("[data-form=keep]")).to_be_visible()
    _no_page_overflow(page)
    screenshot(page, "key-calls-phone")


def test_another_teams_member_gets_a_404(open_page, member, history, sign_in, screenshot):
    page = open_page()
    page.log.allow("status of 404")
    sign_in(page, member, next="/")
    response = page.goto("/teams/ada/calls/")
    assert response.status == 404
    response = page.goto(f"/requests/?id={history['kept']}")
    assert response.status == 404
    expect(page.locator("body")).not_to_contain_text("I love it")
    screenshot(page, "calls-404")
