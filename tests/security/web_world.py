"""Shared pieces of the web-attack tests (tests/security/test_xss.py, test_csrf.py,
test_search_injection.py, test_malformed_requests.py): the XSS payload corpus, an HTML
checker that parses a page and reports any element or attribute a payload managed to
inject, and a catalogue "world" whose every user-controlled text is a payload.

Every payload carries MARK, so the checker can tell an injected script or attribute from
the site's own, and each one sets `window.__xss` or calls alert() when it runs, so the
browser test can see it fire."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser

MARK = "xssmark"

# (name, payload). Short enough for every field they are put in (tags: 40 characters).
PAYLOADS: list[tuple[str, str]] = [
    ("script tag", f"<script>window.__xss='{MARK}'</script>"),
    ("img onerror", f"<img src=x onerror=\"window.__xss='{MARK}'\">"),
    ("svg onload", f"<svg onload=alert('{MARK}')>"),
    ("svg script", f"<svg><script>alert('{MARK}')</script></svg>"),
    ("javascript url", f"<a href=\"javascript:alert('{MARK}')\">x</a>"),
    ("data url", f'<a href="data:text/html,<script>alert(1)</script>">{MARK}</a>'),
    ("iframe srcdoc", f"<iframe srcdoc=\"<script>alert('{MARK}')</script>\"></iframe>"),
    ("textarea breakout", f"</textarea><script>alert('{MARK}')</script>"),
    ("script breakout", f"</script><script>alert('{MARK}')</script>"),
    ("title breakout", f"</title><script>alert('{MARK}')</script>"),
    ("double quote attr", f'" autofocus onfocus="alert(\'{MARK}\')" x="'),
    ("single quote attr", f"' autofocus onfocus='alert(\"{MARK}\")' x='"),
    ("unquoted attr", f"x onmouseover=alert('{MARK}')"),
    ("template braces", f"{{{{ 7*7 }}}}{{% now 'Y' %}}${{7*7}}{MARK}"),
    ("details ontoggle", f"<details open ontoggle=alert('{MARK}')>"),
    ("math href", f'<math><mi href="javascript:alert(1)">{MARK}</mi></math>'),
    ("style expression", f"<style>@import 'javascript:alert(1)';</style>{MARK}"),
    ("unicode brackets", f"\uff1cscript\uff1ealert('{MARK}')\uff1c/script\uff1e"),
    ("rtl override", f"\u202e<b onclick=alert('{MARK}')>gnp.exe</b>"),
    ("zero width", f"<scr\u200bipt>alert('{MARK}')</scr\u200bipt>"),
    ("entity encoded", f"&lt;script&gt;alert('{MARK}')&lt;/script&gt;&#x3c;img src=x&#x3e;"),
    ("json breakout", f'"}}</script><script>alert("{MARK}")</script>'),
    ("comment breakout", f"--><script>alert('{MARK}')</script><!--"),
]

# One payload that, rendered as markup anywhere, fires at once in a browser.
FIRING_PAYLOAD = (
    f"</textarea></script>\"'><img src=x onerror=\"window.__xss='{MARK}';alert(1)\">"
    f"<script>window.__xss='{MARK}'</script><svg onload=\"window.__xss='{MARK}'\">"
)

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "srcdoc", "data", "poster"}
DANGEROUS_SCHEMES = ("javascript:", "data:", "vbscript:")
# Elements the site's own templates never put in a page body with markup from the payloads.
FOREIGN_TAGS = {"iframe", "object", "embed", "math", "base", "frame", "frameset", "applet"}


@dataclass
class Injection:
    what: str
    where: int  # line

    def __str__(self) -> str:
        return f"line {self.where}: {self.what}"


@dataclass
class _Checker(HTMLParser):
    site_scripts: tuple[str, ...] = ("/static/",)
    found: list[Injection] = field(default_factory=list)
    _in_script: bool = False
    _in_data: bool = False  # a <script type="application/json"> data block, never run
    _in_style: bool = False

    def __post_init__(self):
        HTMLParser.__init__(self, convert_charrefs=True)

    def _add(self, what: str) -> None:
        self.found.append(Injection(what, self.getpos()[0]))

    def handle_starttag(self, tag, attrs):
        self._tag(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._tag(tag, attrs)

    def _tag(self, tag, attrs):
        if MARK in tag:
            self._add(f"element named after a payload <{tag}>")
        if tag in FOREIGN_TAGS:
            self._add(f"injected <{tag}> element")
        if tag == "svg" and any(MARK in (v or "") for _, v in attrs):
            self._add("injected <svg> element")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self._add(f"event handler attribute {name}={value!r} on <{tag}>")
            if MARK in name:
                self._add(f"attribute named after a payload on <{tag}>: {name!r}")
            if name in ("autofocus",) and tag not in ("input", "textarea", "select", "button"):
                self._add(f"injected autofocus on <{tag}>")
            if name in URL_ATTRIBUTES:
                squeezed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
                if squeezed.startswith(DANGEROUS_SCHEMES):
                    self._add(f"{name}={value!r} on <{tag}>")
        if tag == "script" and dict(attrs).get("type") == "application/json":
            self._in_data = True
        elif tag == "script":
            self._in_script = True
            src = dict(attrs).get("src")
            if src and not src.startswith(self.site_scripts):
                self._add(f"script from {src!r}")
        if tag == "style":
            self._in_style = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = self._in_data = False
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_data:
            # Payloads may sit in a JSON data block (json_script), as long as they cannot end
            # it: the block must be whole JSON up to its own end tag.
            try:
                json.loads(data)
            except ValueError:
                self._add(f"a JSON data block broken open: {data.strip()[:120]!r}")
        if self._in_script and MARK in data:
            self._add(f"payload inside a <script>: {data.strip()[:120]!r}")
        if self._in_style and MARK in data:
            self._add(f"payload inside a <style>: {data.strip()[:120]!r}")
        if self._in_script and "__xss" in data:
            self._add("a payload's script became a script")


def injections(html: str) -> list[Injection]:
    """Every element or attribute of `html` that a payload put there as live markup."""
    checker = _Checker()
    checker.feed(html)
    checker.close()
    return checker.found


def assert_no_injection(response_or_html, where: str = "") -> str:
    """Parse the page and fail on any live markup a payload managed to inject."""
    if isinstance(response_or_html, str):
        html = response_or_html
    else:
        html = response_or_html.content.decode("utf-8")
    found = injections(html)
    assert not found, f"{where}: payload markup is live:\n" + "\n".join(map(str, found))
    return html


# -- a catalogue whose every user-controlled text is a payload ------------------------------


@dataclass
class HostileWorld:
    owner: object  # User, member of `team`
    team: object  # Team with a payload name and description
    model: object  # public model of `team` with payload title, tagline, task, framework, ...
    version: object
    build: object
    failed: object  # an Invocation that failed with a payload error
    key_secret: str
    payload: str


def build_hostile_world(payload: str = FIRING_PAYLOAD) -> HostileWorld:
    """Team, model, version, build, key, project and failed call whose texts are `payload`."""
    from marketplace.accounts.models import Role
    from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory
    from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
    from tests.gateway.factories import InvocationFactory

    owner = UserFactory(username="mallory", first_name=payload[:45], last_name=payload[:45])
    team = TeamFactory(slug="evil-corp", name=payload[:100], description=payload)
    MembershipFactory(team=team, user=owner, role=Role.OWNER)
    model = ModelFactory(
        owner=team,
        slug="hostile",
        title=payload[:100],
        tagline=payload[:200],
        readme=f"# {payload}\n\n{payload}\n\n[link](javascript:alert('{MARK}'))\n\n"
        + "\n".join(f"* {p}" for _, p in PAYLOADS),
        tags=["nlp", "c++", "x.y#z"],
        task=payload[:64],
        framework=payload[:64],
        license=payload[:64],
        visibility="public",
    )
    build = BuildFactory(
        model=model,
        status="failed",
        log=f"Building...\n{payload}\n" + "\n".join(p for _, p in PAYLOADS),
        error=payload,
    )
    version = VersionFactory(
        model=model,
        number="1.0.0",
        release_notes=payload,
        build=BuildFactory(
            model=model,
            sample_input={"text": payload},
            sample_output={"label": payload},
        ),
    )
    _key, secret = make_key(owner, team=team, name=payload[:100], project=payload[:64])
    failed = InvocationFactory(
        version=version,
        caller_team=team,
        caller_user=owner,
        status="failed",
        project=payload[:64],
        input_preview=payload[:128],
        error={
            "message": payload,
            "error_type": "ValueError" + payload[:40],
            "stacktrace": f"Traceback (most recent call last):\n{payload}",
        },
        id=uuid.uuid4(),
    )
    return HostileWorld(owner, team, model, version, build, failed, secret, payload)


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.pieces.extend(value or "" for _name, value in attrs)

    def handle_data(self, data):
        self.pieces.append(data)


def shown_text(html: str) -> str:
    """The text and attribute values of a page as a reader (or a browser) gets them, entities
    decoded: where a payload shown as plain text can be found."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.pieces)
