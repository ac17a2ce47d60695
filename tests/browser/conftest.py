"""Browser tests: Debian's Chromium, headless, driven by Playwright's sync API against
pytest-django's live server (a thread of this process, on the test's own database).

Fixtures:
  browser        one Chromium for the package's tests (Debian's, never a downloaded one)
  open_page      opens a page in a fresh context (its own cookies); every page it opened is
                 screenshotted (full page) after the test, passed or failed, and the test
                 fails on any JavaScript error or console error the page logged
  page           open_page() for the common case
  screenshot     screenshot(page, "step") saves a descriptive full-page screenshot
  site           the live server, with PUBLIC_URL pointing at it (endpoints, snippets)
  sentiment      ada/sentiment published through the real build path (its README tries
                 to run script); the runner is up, so the gateway can call it
  catalogue      sentiment plus ada/emotions and ada/translate, for search and facets
  sign_in        sign_in(page, user) logs in through the real login form

Screenshots go to $TEST_ARTIFACTS_DIR/screenshots/ (default var/test-artifacts/screenshots).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.gateway.conftest import owner, publish, runner, storage  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
CHROMIUM = CHROMIUM or shutil.which("chromium")
NO_CHROMIUM = "Chromium is not installed (apt-get install chromium; .ci/run does it)"
# The machine's closed network refuses connections Chromium would otherwise open by itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


def artifacts_dir() -> Path:
    root = Path(os.environ.get("TEST_ARTIFACTS_DIR", "var/test-artifacts"))
    directory = (root if root.is_absolute() else REPO / root) / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


# -- the models the pages show ------------------------------------------------------------------

SENTIMENT_README = """
# Sentiment analysis

Scores English text as **positive**, negative or neutral by counting opinion words.

- input: `{"text": "..."}`
- output: `{"label": "positive", "score": 1}`

<script>alert("script in the README")</script>

<img src="/static/img/no-such-image.png" onerror="alert('onerror in the README')">

[a harmless looking link](javascript:alert('javascript link in the README'))
"""

SENTIMENT_MODEL = {
    "model.toml": """
name = "sentiment"
title = "Sentiment analysis"
tagline = "Positive/negative score for English text"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
tags = ["nlp", "text-classification"]
task = "text-classification"
framework = "scikit-learn"
[io]
sample_input = {text = "I love it"}
""",
    "predict.py": """
import re

POSITIVE = {"love", "great", "good", "excellent", "happy", "wonderful"}
NEGATIVE = {"hate", "bad", "awful", "terrible", "sad", "boring"}


def apply(data):
    text = data.get("text", "") if isinstance(data, dict) else str(data)
    words = re.findall(r"[a-z']+", text.lower())
    if not words:
        raise ValueError("Nothing to score: the text has no words")
    score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return {"label": label, "score": score}
""",
    "README.md": SENTIMENT_README,
}

EMOTIONS_MODEL = {
    "model.toml": """
name = "emotions"
title = "Emotion detector"
tagline = "Joy, anger, fear and sadness in text: finer than sentiment"
runtime = "python"
entrypoint = "predict.py:apply"
license = "apache-2.0"
tags = ["nlp"]
task = "text-classification"
framework = "pytorch"
[io]
sample_input = {text = "What a day"}
""",
    "predict.py": """
def apply(data):
    return {"emotion": "joy"}
""",
    "README.md": "# Emotion detector\n\nNames the strongest emotion in a text.\n",
}

TRANSLATE_MODEL = {
    "model.toml": """
name = "translate"
title = "English to French"
tagline = "Translates short English phrases into French"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
tags = ["nlp", "translation"]
task = "translation"
framework = "none"
[io]
sample_input = "good morning"
""",
    "predict.py": """
def apply(data):
    return {"good morning": "bonjour"}.get(str(data).strip().lower(), str(data))
""",
}


@dataclass
class Catalogue:
    owner: object
    sentiment: object  # catalog.models.Version
    emotions: object
    translate: object


@pytest.fixture
def site(live_server, settings):
    """The live server; endpoints and snippets on the pages name it."""
    settings.PUBLIC_URL = live_server.url
    return live_server


@pytest.fixture
def sentiment(site, owner, storage, runner):  # noqa: F811 (fixtures imported above)
    """ada/sentiment 1.0.0, published and callable (the runner is up)."""
    return publish(owner, SENTIMENT_MODEL)


@pytest.fixture
def catalogue(sentiment, owner):  # noqa: F811
    """ada's three models, for pages that list and filter them."""
    return Catalogue(
        owner=owner,
        sentiment=sentiment,
        emotions=publish(owner, EMOTIONS_MODEL),
        translate=publish(owner, TRANSLATE_MODEL),
    )


@pytest.fixture
def member(transactional_db):
    """A signed-up user who is not the owner of the models."""
    return UserFactory(username="grace")


# -- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser tests. Package-scoped rather than session-scoped: while
    Playwright's sync API runs, this thread has a running asyncio loop, and Django refuses
    database calls from it as from async code unless DJANGO_ALLOW_ASYNC_UNSAFE is set; both
    end with this package, so the rest of the suite keeps Django's check (pytest tears the
    browser down before a worker runs another package's test, and starts it again after)."""
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_api.sync_playwright().start()
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class PageLog:
    """What a page reported: JavaScript errors, console errors, dialogs it opened."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect console errors matching `pattern` (e.g. a test's own missing image)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


def _to_top(page) -> None:
    """Scroll to the top: a full-page screenshot of a scrolled page draws the sticky header
    where the viewport was, over the content."""
    page.evaluate("window.scrollTo(0, 0)")


@pytest.fixture
def open_page(browser, site, request):
    """open_page(**context_options) -> a page in a fresh browser context on the live server.
    Clipboard access is granted for the live server's origin. `page.log` is its PageLog."""
    opened = []

    def open_(**options):
        options.setdefault("viewport", VIEWPORT)
        context = browser.new_context(base_url=site.url, **options)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
        context.set_default_timeout(10_000)
        page = context.new_page()
        log = PageLog()

        def on_console(message):
            if message.type == "error":
                where = message.location.get("url", "")
                log.errors.append(f"console error: {message.text} ({where})")

        def on_dialog(dialog):
            log.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda error: log.errors.append(f"JavaScript error: {error}"))
        page.on("dialog", on_dialog)
        page.log = log
        opened.append(page)
        return page

    yield open_

    directory = artifacts_dir()
    name = _file_name(request.node.name)
    problems = []
    for index, page in enumerate(opened):
        suffix = "" if index == 0 else f"-page{index + 1}"
        try:
            _to_top(page)
            page.screenshot(path=str(directory / f"{name}{suffix}.png"), full_page=True)
        except Exception as exc:  # a crashed page must not hide the test's own failure
            problems.append(f"no screenshot of page {index + 1}: {exc}")
        problems += page.log.unexpected()
        page.context.close()
    if problems:
        pytest.fail("The pages reported errors:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def page(open_page):
    return open_page()


@pytest.fixture
def screenshot(request):
    """screenshot(page, "step"): a full-page screenshot named after the test and the step."""
    test = _file_name(request.node.name)

    def take(page, step: str) -> Path:
        path = artifacts_dir() / f"{test}--{_file_name(step)}.png"
        _to_top(page)
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def sign_in():
    """sign_in(page, user, next="/") logs in through the login form and lands on `next`."""
    from playwright.sync_api import expect

    def sign_in_(page, user, next="/", password=DEFAULT_PASSWORD):
        page.goto(f"/accounts/login/?next={next}")
        form = page.locator("main form")
        form.get_by_label("Username").fill(user.username)
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(re.escape(next.split("#")[0]) + r"(#.*)?$"))
        expect(page.locator(".account-name")).to_have_text(user.username)
        return page

    return sign_in_
