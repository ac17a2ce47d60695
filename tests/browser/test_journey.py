"""A newcomer's whole journey, in headless Chromium, through the pages only.

Nadia signs up, creates a team and a team key (the secret read off the page, where it is
shown once), uploads a model package she zipped herself, watches a real Celery worker build
it, and publishes a public version. Grace, another newcomer, signs up, finds the model with
the explore page's live search, runs it in the try-it console, copies the Python and cURL
snippets with the page's copy buttons and runs them as copied, with the key set the way the
page says (MARKETPLACE_API_KEY). Back as Nadia, the team's usage report counts the calls
made with the team's key and their cost, and its earnings count every call to the model.

Nothing of the journey is made with factories: only the platform's own setting (a compute
price, as an administrator sets it) exists before the first page is opened. A named
screenshot is taken at every step (var/test-artifacts/screenshots/).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, NO_CHROMIUM

if CHROMIUM is None:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)
if shutil.which("curl") is None:  # the journey runs the cURL snippet it copies
    pytest.skip(
        "curl is not installed (apt-get install curl; .ci/run does it)", allow_module_level=True
    )
pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")

from django.utils import timezone
from playwright.sync_api import expect

from billing.models import ComputePrice, UsageRecord
from marketplace.celery import app as celery_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct-horse-battery-9"
TEAM = "nadia-labs"
PRICE_PER_SECOND = Decimal("0.002")  # cpu; calls are billed in 0.1 s steps
ROYALTY = Decimal("0.0010")
BILLED_SECONDS = Decimal("0.1")

MODEL_FILES = {
    "model.toml": f"""
name = "wordcount"
title = "Word counter"
tagline = "Counts the words and characters of a text"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
tags = ["nlp", "text"]
task = "text-statistics"
framework = "none"
[io]
sample_input = {{text = "the quick brown fox"}}
[pricing]
royalty_per_call = "{ROYALTY}"
""",
    "predict.py": """
def apply(data):
    text = data["text"] if isinstance(data, dict) else str(data)
    return {"words": len(text.split()), "characters": len(text)}
""",
    "README.md": """
# Word counter

Counts the **words** and characters of a text.

- input: `{"text": "..."}`
- output: `{"words": 4, "characters": 19}`
""",
}


@pytest.fixture
def build_worker(settings):
    """A real Celery worker (a thread of this process, so on the test database) consuming
    this test's own build queue: the live server queues the upload's build there. The
    worker thread closes its database connection after each task: with CONN_MAX_AGE it
    would otherwise outlive the thread and keep the test database from being dropped."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    def close_connections(**_):
        connections.close_all()

    queue = f"test-journey-{uuid.uuid4().hex[:8]}"
    settings.CATALOG_BUILD_QUEUE = queue
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{queue}-default"
    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(
            celery_app,
            queues=[queue, f"{queue}-default"],
            perform_ping_check=False,
            pool="solo",
            shutdown_timeout=30,
            loglevel="WARNING",
        ):
            yield queue
    finally:
        task_postrun.disconnect(close_connections)


@pytest.fixture
def compute_price(transactional_db):
    """What an administrator sets before anyone calls a model."""
    return ComputePrice.objects.create(
        hardware_class="cpu",
        price_per_second=PRICE_PER_SECOND,
        effective_from=timezone.now() - timedelta(days=1),
        note="journey test",
    )


def _package(tmp_path: Path) -> Path:
    """The model folder, zipped the way a newcomer would (the folder itself inside)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in MODEL_FILES.items():
            archive.writestr(f"wordcount/{name}", text.strip() + "\n")
    path = tmp_path / "wordcount.zip"
    path.write_bytes(buffer.getvalue())
    return path


def _sign_up(page, username: str) -> None:
    page.goto("/")
    page.locator(".header-account").get_by_role("link", name="Sign up").click()
    form = page.locator("main form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Email").fill(f"{username}@example.com")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Password again").fill(PASSWORD)
    form.get_by_role("button", name="Create account").click()
    expect(page.locator(".account-name")).to_have_text(username)


def _log_out(page) -> None:
    page.locator(".account-menu summary").click()
    page.locator(".account-menu").get_by_role("button", name="Log out").click()
    expect(page.locator(".header-account").get_by_role("link", name="Log in")).to_be_visible()


def _stat(page, name: str):
    return page.locator(f'[data-stat="{name}"] .stat-value')


def _credits(value: Decimal) -> str:
    """As the reports print credits: at least two places, at most six, no trailing zeros."""
    text = f"{value.quantize(Decimal('0.000001')):f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{int(whole):,}." + fraction.ljust(2, "0")


def test_newcomer_journey(
    open_page, site, screenshot, build_worker, runner, storage, compute_price, tmp_path
):
    # -- Nadia: sign up, a team, a key ------------------------------------------------------
    page = open_page()
    _sign_up(page, "nadia")
    expect(page.get_by_text("Welcome, nadia! Your namespace is ready.")).to_be_visible()
    screenshot(page, "01-signed-up")

    create = page.locator(".card", has=page.get_by_role("heading", name="Create a team"))
    create.get_by_label("Team name in URLs").fill(TEAM)
    create.get_by_label("Display name").fill("Nadia Labs")
    create.get_by_role("button", name="Create team").click()
    expect(page).to_have_url(re.compile(rf"/teams/{TEAM}/$"))
    expect(page.get_by_text(f"Team {TEAM} created. You are its owner.")).to_be_visible()
    screenshot(page, "02-team-created")

    page.locator(".page-header").get_by_role("link", name="API keys").click()
    expect(page).to_have_url(re.compile(r"/keys/"))
    form = page.locator("main form", has=page.get_by_role("button", name="Create key"))
    # Coming from the team's page, the key is for the team.
    expect(form.get_by_label("Team")).to_have_value(TEAM)
    form.get_by_label("Name").fill("wordcount app")
    form.get_by_label("Full access").check()
    form.get_by_role("button", name="Create key").click()
    secret_box = page.locator("#new-key-secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.text_content().strip()
    assert re.fullmatch(r"\S{20,}", secret), secret
    created = page.get_by_role("status").filter(has=secret_box)
    expect(created).to_contain_text("set it as MARKETPLACE_API_KEY")
    expect(created).to_contain_text(f"billed to {TEAM}")
    keys = page.locator("table").first
    expect(keys.get_by_role("row", name=re.compile("wordcount app"))).to_contain_text(TEAM)
    screenshot(page, "03-key-created")

    # -- Nadia: upload, watch the build, publish ------------------------------------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()
    page.get_by_role("link", name=TEAM, exact=True).click()
    page.locator(".page-header").get_by_role("link", name="Publish a model").click()
    expect(page).to_have_url(re.compile(r"/new/\?owner=" + TEAM + "$"))
    upload = page.locator("#upload-form")
    expect(upload.get_by_label("Namespace")).to_have_value(TEAM)
    upload.get_by_label("Package file").set_input_files(str(_package(tmp_path)))
    screenshot(page, "04-upload")
    upload.get_by_role("button", name="Upload and build").click()

    expect(page).to_have_url(re.compile(rf"/{TEAM}/wordcount/builds/[0-9a-f-]{{36}}$"))
    log = page.locator("#build-log")
    expect(log).to_contain_text("received from nadia")
    screenshot(page, "05-build-started")
    # The page follows the log live and reloads when the build is over.
    expect(page.locator("#build-status")).to_have_text("succeeded", timeout=60_000)
    expect(log).to_be_visible()
    expect(log).not_to_be_empty()
    sample = page.locator(".card", has=page.get_by_role("heading", name="Sample"))
    expect(sample).to_contain_text('"words": 4')
    screenshot(page, "06-build-succeeded")

    publish = page.locator(".card", has=page.get_by_role("heading", name="Publish"))
    publish.get_by_label(re.compile(r"^\s*Minor")).check()
    publish.get_by_label(re.compile(r"^\s*Public")).check()
    publish.get_by_label("Release notes").fill("First release")
    publish.get_by_role("button", name="Publish version").click()
    expect(page).to_have_url(re.compile(rf"/{TEAM}/wordcount$"))
    expect(page.get_by_text(f"Published {TEAM}/wordcount 0.1.0 (public).")).to_be_visible()
    expect(page.locator("#endpoint")).to_have_text(
        f"POST {site.url}/v1/algo/{TEAM}/wordcount/0.1.0"
    )
    screenshot(page, "07-published")
    _log_out(page)

    # -- Grace: sign up, find the model, try it, copy and run the snippets ----------------
    grace = open_page()
    _sign_up(grace, "grace")
    screenshot(grace, "08-grace-signed-up")
    grace.get_by_role("navigation", name="Main").get_by_role("link", name="Explore").click()
    grace.evaluate("window.stillTheSamePage = true")
    grace.locator("main input[name=q]").press_sequentially("word counter")
    cards = grace.locator("article.model-card")
    expect(cards).to_have_count(1, timeout=5_000)
    expect(cards.first.locator(".model-title")).to_have_text("Word counter")
    assert grace.evaluate("window.stillTheSamePage") is True  # live results, no reload
    screenshot(grace, "09-found-by-live-search")
    cards.first.locator(".model-title").click()
    expect(grace).to_have_url(re.compile(rf"/{TEAM}/wordcount$"))
    expect(grace.locator("main h1").first).to_contain_text("Word counter")
    screenshot(grace, "10-model-page")

    grace.locator("#try-tab-json").click()
    field = grace.locator("#try-input")
    expect(field).to_have_value(re.compile(r'"text":\s*"the quick brown fox"'))
    field.fill('{"text": "hello brave new world"}')
    grace.get_by_role("button", name="Run", exact=True).click()
    expect(grace.locator("#try-output")).to_have_text(
        json.dumps({"words": 4, "characters": 21}, indent=2)
    )
    expect(grace.locator("#try-status")).to_contain_text("request ")
    screenshot(grace, "11-try-it-result")

    def copy_snippet(label: str, slug: str) -> str:
        tab = grace.get_by_role("tab", name=label, exact=True)
        tab.click()
        expect(tab).to_have_attribute("aria-selected", "true")
        panel = grace.locator(f'[data-tab-panel="{slug}"]')
        button = panel.get_by_role("button", name="Copy code to clipboard")
        button.click()
        expect(button).to_have_text("Copied")
        copied = grace.evaluate("navigator.clipboard.readText()")
        assert copied == panel.locator("pre.code").text_content().rstrip()
        return copied

    # The page says: set MARKETPLACE_API_KEY (most snippets also take a placeholder).
    card = grace.locator(".card", has=grace.get_by_role("heading", name="Call it"))
    expect(card).to_contain_text("set MARKETPLACE_API_KEY")
    # Grace has no key of her own: the card says where to make one.
    expect(card.get_by_role("link", name="Create an API key")).to_have_attribute("href", "/keys/")
    environment = {**os.environ, "MARKETPLACE_API_KEY": secret}
    python_code = copy_snippet("Python (requests)", "python")
    screenshot(grace, "12-python-snippet-copied")
    ran = subprocess.run(
        [sys.executable, "-c", python_code],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout) == {"words": 4, "characters": 19}

    curl_script = copy_snippet("cURL", "curl")
    screenshot(grace, "13-curl-snippet-copied")
    ran = subprocess.run(
        ["bash", "-c", curl_script],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout) == {"words": 4, "characters": 19}
    _log_out(grace)

    # -- Nadia again: the team's usage and earnings ---------------------------------------
    page.goto("/accounts/login/")
    login = page.locator("main form")
    login.get_by_label("Username").fill("nadia")
    login.get_by_label("Password").fill(PASSWORD)
    login.get_by_role("button", name="Log in").click()
    expect(page.locator(".account-name")).to_have_text("nadia")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()
    page.get_by_role("link", name=TEAM, exact=True).click()
    page.locator(".page-header").get_by_role("link", name="Usage and earnings").click()
    expect(page).to_have_url(re.compile(rf"/teams/{TEAM}/usage/"))

    # The two snippet calls were made with the team's key: they are the team's usage.
    per_call = BILLED_SECONDS * PRICE_PER_SECOND + ROYALTY
    expect(_stat(page, "calls")).to_have_text("2")
    expect(_stat(page, "billed_calls")).to_have_text("2")
    expect(_stat(page, "compute_cost")).to_have_text(
        _credits(2 * BILLED_SECONDS * PRICE_PER_SECOND)
    )
    expect(_stat(page, "royalties")).to_have_text(_credits(2 * ROYALTY))
    expect(_stat(page, "total")).to_have_text(_credits(2 * per_call))
    row = page.locator("#breakdown tbody tr", has_text="wordcount")
    expect(row.locator("td").first).to_have_text("2")
    expect(row.locator("td").last).to_have_text(_credits(2 * per_call))
    screenshot(page, "14-team-usage")

    # Every call to the model, the console's included, earns the team its royalty.
    page.locator(".page-header").get_by_role("link", name="Earnings").click()
    expect(page).to_have_url(re.compile(rf"/teams/{TEAM}/earnings/"))
    expect(_stat(page, "calls")).to_have_text("3")
    expect(_stat(page, "royalties")).to_have_text(_credits(3 * ROYALTY))
    screenshot(page, "15-team-earnings")

    records = UsageRecord.objects.filter(model__slug="wordcount").select_related("team")
    assert records.count() == 3
    assert {r.team.slug for r in records} == {TEAM, "grace"}
