"""README rendering: Markdown becomes HTML, and nothing executable gets through."""

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.rendering import render_markdown


def test_markdown_features():
    html = render_markdown(
        "# Title\n\n**bold** and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        '\n```json\n{"x": 1}\n```\n\n[docs](https://example.com)'
    )
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert '<code class="language-json">' in html
    assert 'href="https://example.com"' in html and "noopener" in html


class _Elements(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def assert_inert(html: str) -> None:
    """No element that runs code: no script-like tags, event handlers, inline styles, or
    links/images to anything but http(s) and mailto."""
    for tag, attrs in _Elements(html).found:
        assert tag not in {"script", "iframe", "svg", "object", "embed", "style", "form"}, html
        for name, value in attrs.items():
            assert not name.startswith("on") and name != "style", html
            if name in ("href", "src"):
                assert (value or "").lower().startswith(
                    ("http://", "https://", "mailto:")
                ) or not re.match(r"^[a-z][a-z0-9+.-]*:", (value or "").lower()), html


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "![x](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil.example></iframe>",
        "<svg onload=alert(1)>",
        '<div style="background:url(javascript:alert(1))">x</div>',
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox)",
        "<a href='https://ok.example' onclick='alert(1)'>x</a>",
    ],
)
def test_nothing_executable_gets_through(attack):
    html = render_markdown(attack)
    assert_inert(html)
    assert "<script" not in html.lower()


@given(st.text())
def test_arbitrary_text_renders_inert(text):
    assert_inert(render_markdown(text))
