"""XSS in a real browser: a model published through the real build path, whose README,
title and tagline are payloads, whose output is a payload (as JSON and as text) and whose
raised error message is one, run from the try-it console; then the errors tab and the
request log that show that error. No dialog may open, the payloads' window flag must stay
unset, no injected element may exist, and the payload must be shown as text.

The server-side half (every page, parsed) is tests/security/test_xss.py."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.gateway.conftest import publish

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYLOAD = (
    "</textarea></script>\"'><img src=x onerror=\"window.__xss='img';alert(1)\">"
    "<script>window.__xss='script'</script><svg onload=\"window.__xss='svg'\">"
    "<a href=\"javascript:window.__xss='link'\" id=xsslink>x</a>"
)

EXAMPLE_NAME = "<img src=x onerror=\"window.__xss='example'\">"

HOSTILE_MODEL = {
    "model.toml": """
name = "hostile"
title = '</title><img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
tagline = '"><svg onload="window.__xss=3"><b onmouseover="window.__xss=4">tagline</b>'
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
tags = ["nlp"]
task = '<details open ontoggle="window.__xss=5">'
framework = '{{ 7*7 }}'
[io]
sample_input = {text = "</textarea><img src=x onerror=window.__xss=6>"}
input_schema = "schema.json"
[[io.examples]]
input = {text = "example"}
"""
    + f"name = {json.dumps(EXAMPLE_NAME)}\n",
    # Titles, descriptions, field names, choices and a uri field the form draws: text only.
    "schema.json": json.dumps(
        {
            "title": PAYLOAD,
            "description": PAYLOAD,
            "type": "object",
            "properties": {
                "text": {"type": "string", "title": PAYLOAD, "description": PAYLOAD},
                PAYLOAD: {"enum": [PAYLOAD, "javascript:window.__xss='enum'"]},
                "link": {"type": "string", "format": "uri", "default": "javascript:window.__xss=7"},
            },
        }
    ),
    "predict.py": f"""
PAYLOAD = {PAYLOAD!r}


def apply(data):
    if isinstance(data, str):
        if data.strip() == "raise":
            raise ValueError(PAYLOAD)
        return PAYLOAD
    return {{"html": PAYLOAD, PAYLOAD: [PAYLOAD]}}
""",
    "README.md": f"""
# Hostile README

{PAYLOAD}

<iframe srcdoc="<script>parent.__xss='iframe'</script>"></iframe>

[click me](javascript:window.__xss='readme-link')

<details open ontoggle="window.__xss='details'">x</details>

```html
{PAYLOAD}
```
""",
}

INJECTED = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.startsWith('on')) found.push(el.tagName + '[' + attr.name + ']');
      if (['href', 'src', 'action', 'formaction'].includes(attr.name)
          && /^\\s*(javascript|data|vbscript):/i.test(attr.value)) {
        found.push(el.tagName + '[' + attr.name + '=' + attr.value + ']');
      }
    }
  }
  for (const s of document.scripts) {
    // A JSON data block (json_script) is never run: the console's config holds the payloads.
    if (s.type === 'application/json') continue;
    if (s.text.includes('__xss')) found.push('script: ' + s.text.slice(0, 80));
  }
  for (const tag of ['iframe', 'object', 'embed']) {
    if (document.querySelector(tag)) found.push(tag);
  }
  if (document.getElementById('xsslink')) found.push('a#xsslink');
  return {found: found, flag: window.__xss === undefined ? null : String(window.__xss)};
}"""


def assert_clean(page, where: str) -> None:
    page.wait_for_timeout(200)  # an onerror/onload payload would have fired by now
    state = page.evaluate(INJECTED)
    assert state["flag"] is None, f"{where}: a payload ran (window.__xss = {state['flag']!r})"
    assert not state["found"], f"{where}: injected markup {state['found']}"
    assert not page.log.dialogs, f"{where}: dialogs opened {page.log.dialogs}"


@pytest.fixture
def hostile(site, owner, storage, runner):
    return publish(owner, HOSTILE_MODEL)


def _run(page, text: str, kind: str) -> str:
    if kind == "application/json":
        page.locator("#try-tab-json").click()
        page.locator("#try-input").fill(text)
    else:
        page.locator("#try-tab-text").click()
        page.locator("#try-text").fill(text)
    page.locator("#try-run").click()
    status = page.locator("#try-status")
    expect(status).to_contain_text(re.compile(r"round trip"), timeout=20_000)
    return status.inner_text()


def test_hostile_model_in_the_console_errors_tab_and_request_log(
    open_page, hostile, owner, sign_in
):
    page = open_page()
    sign_in(page, owner, next="/ada/hostile")
    expect(page.locator("#model-card h1")).to_contain_text("</title><img")
    expect(page.locator(".prose")).to_contain_text("Hostile README")
    expect(page.locator(".prose")).to_contain_text("onerror=")
    assert_clean(page, "model page")

    # The sample input in the textarea did not break out of it.
    assert "</textarea><img" in page.locator("#try-input").input_value()
    # The form drew the schema's payloads as text.
    expect(page.locator("#try-form")).to_contain_text("onerror=")
    page.locator("#try-example").select_option(label=EXAMPLE_NAME)
    assert_clean(page, "the console's form")

    output = page.locator("#try-output")
    _run(page, '{"x": 1}', "application/json")
    expect(output).to_contain_text("onerror=")
    assert json.loads(output.text_content()) == {"html": PAYLOAD, PAYLOAD: [PAYLOAD]}
    assert_clean(page, "JSON output")

    _run(page, "hello", "text/plain")
    expect(output).to_have_text(PAYLOAD)
    assert_clean(page, "text output")

    status = _run(page, "raise", "text/plain")
    assert "The model raised an error" in status
    expect(output).to_contain_text("ValueError")
    assert PAYLOAD in output.text_content()
    assert_clean(page, "error in the console")
    request_id = re.search(r"request ([0-9a-f-]{36})", status).group(1)

    page.goto("/ada/hostile/monitoring/errors")
    expect(page.locator("[data-field=message]").first).to_contain_text("onerror=")
    assert PAYLOAD in page.locator("[data-field=message]").first.inner_text()
    assert_clean(page, "errors tab")

    page.goto(f"/requests/?id={request_id}")
    expect(page.locator("[data-field=message]")).to_have_text(PAYLOAD)
    assert_clean(page, "request log")

    page.goto("/explore/?q=hostile")
    expect(page.locator("main")).to_contain_text("</title><img")
    assert_clean(page, "explore")
