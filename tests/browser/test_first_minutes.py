"""A newcomer's first minutes, issue 18, in headless Chromium at desktop and at phone width:
a first key that works, the model page that leads with the model's card, a page per version
whose snippets and console call that version, cards and the home page's sections, budgets
reached by links, and the API reference inside the site's frame with the models' own sample
bodies. Each step is screenshotted (var/test-artifacts/screenshots/), named after the test
and its width."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest

from tests.browser.conftest import CHROMIUM, NO_CHROMIUM, artifacts_dir, publish

if CHROMIUM is None:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")

from playwright.sync_api import expect

from billing.models import Budget
from marketplace.accounts.models import ApiKey
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.browser

WIDTHS = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}

SENTIMENT_V2 = {
    "model.toml": """
name = "sentiment"
title = "Sentiment analysis"
tagline = "Positive/negative score for English text"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
tags = ["nlp", "text-classification", "nlp"]
task = "text-classification"
[io]
sample_input = {text = "Not bad at all"}
[[metrics]]
name = "accuracy"
value = 0.797
dataset = "468 review sentences, grouped 5-fold CV"
""",
    "predict.py": """
def apply(data):
    return {"label": "positive", "version": 2}
""",
    "README.md": "# Sentiment, second version\n\nNow with negations.\n",
}


@pytest.fixture(params=sorted(WIDTHS))
def width(request):
    return request.param


@pytest.fixture
def sized_page(open_page, width):
    return open_page(viewport=WIDTHS[width])


def no_horizontal_scroll(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"


def test_a_first_key_given_only_a_name_runs_the_model_pages_snippets(
    sized_page, sentiment, member, sign_in, screenshot, width
):
    page = sign_in(sized_page, member, next="/keys/")
    form = page.locator("main form", has=page.get_by_role("button", name="Create key"))
    expect(form.get_by_label("Call any model")).to_be_checked()
    form.get_by_label("Name").fill("my first key")
    form.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key-secret")).to_be_visible()
    secret = page.locator("#new-key-secret").text_content().strip()
    expect(page.locator("[data-key-does-nothing]")).to_have_count(0)
    key = ApiKey.objects.get(name="my first key")
    assert key.scopes == ["algo://*"]
    screenshot(page, f"{width}-01-key-created")

    # A key that can do nothing takes a deliberate tick, and is then flagged.
    form.get_by_label("Name").fill("empty key")
    form.get_by_label("Restricted").check()
    form.get_by_role("button", name="Create key").click()
    expect(page.locator("#allow-nothing-field")).to_contain_text("could call no model")
    form.get_by_label("Yes, create a key that can do nothing yet").check()
    form.get_by_role("button", name="Create key").click()
    expect(page.locator("[data-key-does-nothing]")).to_be_visible()
    screenshot(page, f"{width}-02-empty-key-warned")

    page.goto("/ada/sentiment")
    snippets = page.locator("#snippets")
    expect(snippets.locator(".card-header")).to_contain_text("MARKETPLACE_API_KEY")
    newest = ApiKey.objects.filter(created_by=member).order_by("-created_at").first()
    expect(snippets.locator("pre.code").first).to_contain_text(newest.prefix)
    no_horizontal_scroll(page)
    screenshot(page, f"{width}-03-snippets-name-the-key")

    # The Python snippet, copied with the page's button, runs as it is with the first key.
    tab = snippets.get_by_role("tab", name="Python (requests)", exact=True)
    tab.click()
    panel = snippets.locator('[data-tab-panel="python"]')
    expect(panel.locator("pre.code")).to_be_visible()
    panel.get_by_role("button", name="Copy code to clipboard").click()
    code = page.evaluate("navigator.clipboard.readText()")
    lines = [line for line in code.splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) <= 10, code
    no_horizontal_scroll(page)
    panel.scroll_into_view_if_needed()
    screenshot(page, f"{width}-04-python-snippet")
    ran = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MARKETPLACE_API_KEY": secret},
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["label"] == "positive"


def test_the_model_page_leads_with_its_card_and_every_version_has_its_page(
    sized_page, sentiment, owner, member, sign_in, screenshot, width
):
    publish(owner, SENTIMENT_V2)
    page = sign_in(sized_page, member, next="/ada/sentiment")
    card = page.locator("#model-card")
    expect(card.locator("h1")).to_contain_text("Sentiment analysis")
    expect(card.locator('[data-fact="version"]')).to_contain_text("2.0.0")
    expect(card.locator('[data-fact="license"]')).to_have_text("mit")
    expect(card.locator('[data-fact="calls"]')).to_have_text("0")
    expect(card.locator("[data-tags] .pill", has_text="nlp")).to_have_count(1)
    metrics = page.locator("#metrics")
    expect(metrics).to_contain_text("accuracy")
    expect(metrics).to_contain_text("0.797")
    # Card, then the README, then the console, then the snippets: top to bottom.
    tops = [
        page.locator(selector).bounding_box()["y"]
        for selector in ("#model-card", "#readme", "#try-it", "#snippets")
    ]
    assert tops == sorted(tops), tops
    expect(page.locator("#readme")).to_contain_text("Now with negations")
    no_horizontal_scroll(page)
    screenshot(page, f"{width}-01-model-page")

    page.locator("#versions").get_by_role("link", name="1.0.0").click()
    expect(page).to_have_url(re.compile(r"/ada/sentiment/1\.0\.0$"))
    expect(page.locator("[data-older-version]")).to_contain_text("2.0.0")
    expect(page.locator("#readme")).to_contain_text("Scores English text")
    expect(page.locator("#metrics")).to_have_count(0)
    expect(page.locator("#endpoint")).to_contain_text("/v1/algo/ada/sentiment/1.0.0")
    expect(page.locator("#snippets pre.code").first).to_contain_text("/v1/algo/ada/sentiment/1.0.0")
    # The console calls 1.0.0 through the real gateway: the first version's answer.
    page.locator("#try-run").click()
    expect(page.locator("#try-output")).to_contain_text('"label": "positive"')
    expect(page.locator("#try-output")).not_to_contain_text('"version": 2')
    no_horizontal_scroll(page)
    screenshot(page, f"{width}-02-version-page")


def test_cards_and_the_home_page(sized_page, catalogue, screenshot, width):
    page = sized_page
    page.goto("/")
    # Nothing was called this week: Trending says so instead of repeating Newest.
    expect(page.locator("[data-trending-empty]")).to_be_visible()
    icons = page.locator(".tiles [data-task-icon]")
    expect(icons.first).to_be_visible()
    names = icons.evaluate_all("(all) => all.map((icon) => icon.dataset.taskIcon)")
    assert len(names) == len(set(names)) >= 2, names
    card = page.locator("article.model-card", has_text="Sentiment analysis").first
    expect(card.locator('[data-card="calls"]')).to_contain_text("calls")
    expect(card.locator('[data-card="updated"]')).to_contain_text("updated")
    expect(card.locator('[data-card="price"]')).to_be_visible()
    expect(page.locator("[data-example-answer]")).to_contain_text('"class": "virginica"')
    no_horizontal_scroll(page)
    screenshot(page, f"{width}-01-home")


def test_budgets_are_reached_by_links(sized_page, member, sign_in, screenshot, width):
    team = TeamFactory(slug="grace-lab")
    MembershipFactory(team=team, user=member, role="owner")
    Budget.objects.create(team=team, monthly_amount=Decimal("50"), thresholds=[80])
    page = sign_in(sized_page, member, next="/billing/")
    row = page.get_by_role("row", name=re.compile("grace-lab"))
    row.get_by_role("link", name="Budgets").click()
    expect(page).to_have_url(re.compile(r"/teams/grace-lab/budgets/$"))
    screenshot(page, f"{width}-01-budgets-from-billing")
    page.goto("/teams/grace-lab/")
    page.locator(".page-header").get_by_role("link", name="Budgets").click()
    expect(page).to_have_url(re.compile(r"/teams/grace-lab/budgets/$"))
    page.goto("/teams/grace-lab/usage/")
    page.locator(".page-header").get_by_role("link", name="Budgets").click()
    expect(page).to_have_url(re.compile(r"/teams/grace-lab/budgets/$"))
    no_horizontal_scroll(page)
    screenshot(page, f"{width}-02-budgets")


def test_the_api_reference_is_in_the_sites_frame_with_the_models_samples(
    sized_page, sentiment, width, request
):
    page = sized_page
    page.goto("/v1/docs")
    expect(page.locator(".site-header, header").first).to_be_visible()
    operation = page.locator(".opblock-post", has_text="/v1/algo/{owner}/{name}/{version}")
    expect(operation.first).to_be_visible(timeout=20_000)
    operation.first.locator(".opblock-summary").click()
    expect(operation.first).to_contain_text("I love it")
    expect(operation.first).not_to_contain_text('"string"')
    # The reference is very long at phone width: the screenshot shows the opened operation.
    operation.first.scroll_into_view_if_needed()
    path = artifacts_dir() / f"{request.node.name}--{width}-01-api-reference.png"
    page.screenshot(path=str(path).replace("[", "-").replace("]", ""), timeout=30_000)
    page.locator("[data-back-to-docs]").click()
    expect(page).to_have_url(re.compile(r"/docs/$"))
