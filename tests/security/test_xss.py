"""XSS, server side: every page that shows a user-controlled text (README, title, tagline,
tags, task, framework, licence, team names, key names, projects, build logs, a model's
error messages and stack traces, search words and filters, ?next=) is rendered with a
payload in it, parsed, and must contain no element or attribute the payload put there
as live markup; the payload must still be shown, as text. The browser half (the try-it
console and the README, with a real model) is tests/browser/test_xss_console.py."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from django.test import Client

from catalog.rendering import render_markdown
from tests.security.web_world import (
    FIRING_PAYLOAD,
    MARK,
    PAYLOADS,
    assert_no_injection,
    build_hostile_world,
    injections,
    shown_text,
)

pytestmark = pytest.mark.django_db

PAYLOAD_IDS = [name for name, _ in PAYLOADS]


# -- the checker itself finds what it is meant to find ---------------------------------------


@pytest.mark.parametrize(
    "markup",
    [
        f"<p><script>window.__xss='{MARK}'</script></p>",
        "<img src=x onerror=alert(1)>",
        "<a href=' JaVa\tScRiPt:alert(1)'>x</a>",
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        "<iframe src=/></iframe>",
        f'<input value="" autofocus onfocus="alert(\'{MARK}\')" x="">',
        "<svg onload=alert(1)>",
        "<details open ontoggle=alert(1)>",
        f"<div {MARK}=1>",
    ],
)
def test_the_checker_sees_live_markup(markup):
    assert injections(f"<html><body>{markup}</body></html>")


def test_the_checker_accepts_escaped_payloads():
    from django.utils.html import escape

    page = "".join(f"<p title='{escape(p)}'>{escape(p)}</p>" for _, p in PAYLOADS)
    assert injections(page) == []
    assert "onerror" in shown_text(page)


# -- README: Markdown rendered and sanitised -------------------------------------------------


@pytest.mark.parametrize("payload", [p for _, p in PAYLOADS], ids=PAYLOAD_IDS)
def test_readme_payload_is_never_markup(payload):
    for readme in (
        payload,
        f"# {payload}",
        f"* {payload}",
        f"`{payload}`",
        f"> {payload}",
        f"| a |\n|---|\n| {payload} |",
        f"[text]({payload})",
        f"![img]({payload})",
        f'[x](javascript:alert("{MARK}") "t")',
        f"[x](JAVASCRIPT:alert('{MARK}'))",
        f"[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) {MARK}",
        f"<a href='javascript:alert(1)'>{MARK}</a>",
        f"[x]: javascript:alert('{MARK}')\n\n[x]",
    ):
        html = render_markdown(readme)
        assert_no_injection(html, f"README {readme!r}")


def test_readme_keeps_safe_markdown():
    html = render_markdown("# Title\n\n**bold** [site](https://example.com) `code`")
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert 'href="https://example.com"' in html and "<code>code</code>" in html


# -- every page that shows a user-controlled text ------------------------------------------


@pytest.fixture
def world(db):
    return build_hostile_world()


@pytest.fixture
def owner_client(world):
    client = Client()
    client.force_login(world.owner)
    return client


def _text(payload: str, limit: int) -> str:
    """A recognisable piece of a payload that was cut to `limit` characters."""
    return payload[:limit][-30:]


def _get(client, url, **headers):
    response = client.get(url, **headers)
    assert response.status_code < 500, (url, response.status_code)
    assert response["Content-Type"].startswith("text/html"), (url, response["Content-Type"])
    return assert_no_injection(response, url)


def test_model_page_shows_every_payload_as_text(world, owner_client):
    for client in (Client(), owner_client):
        html = _get(client, "/evil-corp/hostile")
        text = shown_text(html)
        for piece in (
            _text(world.payload, 100),  # title
            _text(world.payload, 200),  # tagline
            _text(world.payload, 64),  # task, framework, licence
            "onerror=",  # the README's list, as text
            "{% now 'Y' %}",  # template syntax in data is never evaluated
        ):
            assert piece in text, piece
        # The sample input in the try-it textarea and the sample card: text, not markup.
        assert "</textarea>" not in html.split('id="try-input"')[-1].split("</textarea>")[0]


PUBLIC_PAGES = [
    "/",
    "/evil-corp",
    "/explore/",
    "/explore/?task={p64}",
    "/explore/?framework={p64}&license={p64}",
    "/explore/?q={q}",
    "/explore/?q={q}&sort=popular&owner=evil-corp",
    "/explore/?sort={p64}",
    "/explore/?page={p64}",
    "/explore/?tags={tag}",
    "/accounts/login/?next={p}",
    "/accounts/signup/?next={p}",
    "/{p}/",
    "/evil-corp/{p64}",
    "/pricing/",
    "/docs/",
]


def _fill(url: str, world) -> str:
    p = world.payload
    return url.format(
        p=quote(p, safe=""),
        p64=quote(p[:64], safe=""),
        q=quote(p[:200], safe=""),
        tag=quote(f"nlp,{p[:40]}", safe=""),
        build=world.build.pk,
        failed=world.failed.pk,
    )


def test_public_pages(world, owner_client):
    """Pages anyone can open, anonymous and signed in, with payloads in the data and in the
    query string (echoed in inputs, filters, messages, the 404 page, ?next=)."""
    for client in (Client(), owner_client):
        for url in PUBLIC_PAGES:
            _get(client, _fill(url, world))


LIVE_SEARCHES = [
    {"q": FIRING_PAYLOAD[:200]},
    {"q": "hostile", "task": FIRING_PAYLOAD[:64]},
    {"sort": FIRING_PAYLOAD[:64]},
    {"page": FIRING_PAYLOAD[:64]},
    {"q": "x" * 300 + FIRING_PAYLOAD},
]


def test_live_search_fragment(world):
    """The fragment is put into the page with innerHTML: it must be inert markup, results and
    error messages alike."""
    statuses = set()
    for params in LIVE_SEARCHES:
        response = Client().get(f"/explore/?{urlencode(params)}", HTTP_X_LIVE_SEARCH="1")
        statuses.add(response.status_code)
        assert_no_injection(response, f"live search {params}")
    assert statuses == {200, 400}


def test_search_highlights_escape_the_matched_text(world):
    html = _get(Client(), "/explore/?q=onerror")
    text = shown_text(html)
    assert "onerror" in text


SIGNED_IN_PAGES = [
    "/evil-corp/hostile/builds/{build}",
    "/evil-corp/hostile/monitoring",
    "/evil-corp/hostile/monitoring?window={p64}&version={p64}",
    "/evil-corp/hostile/monitoring/errors",
    "/evil-corp/hostile/monitoring/errors?error_type={p64}&version={p64}&before={p64}",
    "/requests/?id={failed}",
    "/requests/?id={p}",
    "/dashboard/",
    "/dashboard/?window={p64}",
    "/teams/",
    "/teams/evil-corp/",
    "/keys/",
    "/new/",
    "/billing/",
    "/teams/evil-corp/usage/",
    "/teams/evil-corp/usage/?group_by=project&project={p64}",
    "/teams/evil-corp/usage/?start={p64}&end={p64}&range={p64}",
    "/teams/evil-corp/earnings/",
    "/teams/evil-corp/budgets/",
    "/teams/evil-corp/audit/",
    "/accounts/password/",
]


def test_signed_in_pages(world, owner_client):
    """The owner's pages: builds and their logs, monitoring, errors, the request log, teams,
    keys, billing, budgets, audit; payloads in the data and in the query string."""
    for url in SIGNED_IN_PAGES:
        _get(owner_client, _fill(url, world))


def test_error_message_and_stack_trace_are_shown_as_text(world, owner_client):
    """The errors tab and the request log show the model's own error message: text only."""
    for url in ("/evil-corp/hostile/monitoring/errors", f"/requests/?id={world.failed.pk}"):
        html = _get(owner_client, url)
        text = shown_text(html)
        assert world.payload in text, url  # the message, whole
        assert f"Traceback (most recent call last):\n{world.payload}" in text, url


def test_build_log_is_shown_as_text(world, owner_client):
    html = _get(owner_client, f"/evil-corp/hostile/builds/{world.build.pk}")
    assert world.payload in shown_text(html)


def test_api_answers_payloads_as_json_never_html(world):
    """The API returns the texts as they are, in JSON a browser will not sniff as HTML."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {world.key_secret}")
    for url in (
        f"/v1/invocations/{world.failed.pk}",
        "/v1/models/evil-corp/hostile",
        "/v1/models/evil-corp/hostile/errors",
        f"/v1/models?search={quote(FIRING_PAYLOAD[:200])}",
        f"/v1/models/evil-corp/{quote(FIRING_PAYLOAD[:60], safe='')}",
        f"/v1/models?task={quote(FIRING_PAYLOAD[:64])}",
    ):
        response = client.get(url)
        assert response.status_code < 500, url
        assert response["Content-Type"].startswith("application/json"), url
        assert response["X-Content-Type-Options"] == "nosniff", url
    body = client.get(f"/v1/invocations/{world.failed.pk}").json()
    assert body["error"]["message"] == world.payload
