"""The try-it console in a real browser, at desktop and at phone width: the form drawn from
an iris-like model's input schema (bounds refused at the field), the raw JSON tab kept in
step, named examples, the version picker, a cold start counted, a records answer as a
table, and an image model whose file picker sends a picture that is shown back.

Both models are published through the real build path and run by the real runner."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib

import pytest
from playwright.sync_api import expect

from gateway.models import Invocation
from tests.gateway.conftest import publish

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}

FLOWER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Iris flower measurements",
    "description": "One flower, or a list of flowers. Measurements are in centimetres.",
    "$defs": {
        "flower": {
            "type": "object",
            "properties": {
                "sepal_length": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "sepal_width": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "petal_length": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "petal_width": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "garden": {"type": "string", "description": "Where it grew (optional)"},
                "wild": {"type": "boolean"},
            },
            "required": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            "additionalProperties": False,
        }
    },
    "oneOf": [
        {"$ref": "#/$defs/flower"},
        {"type": "array", "items": {"$ref": "#/$defs/flower"}, "minItems": 1, "maxItems": 100},
    ],
}


def flowers_model(version_note: str, *, slow_start: bool = False) -> dict:
    load = (
        "import time\n\n\ndef load():\n    time.sleep(4)\n    return None\n" if slow_start else ""
    )
    return {
        "model.toml": f"""
name = "flowers"
title = "Iris species"
tagline = "The species of an iris from four measurements"
runtime = "python"
entrypoint = "predict.py:apply"
{'load = "predict.py:load"' if slow_start else ""}
license = "mit"
task = "tabular-classification"
[io]
sample_input = {{sepal_length = 5.1, sepal_width = 3.5, petal_length = 1.4, petal_width = 0.2}}
input_schema = "schema.json"
[[io.examples]]
name = "A virginica"
input = {{sepal_length = 6.7, sepal_width = 3.0, petal_length = 5.2, petal_width = 2.3}}
[[io.examples]]
name = "Two flowers"
input = [
  {{sepal_length = 5.1, sepal_width = 3.5, petal_length = 1.4, petal_width = 0.2}},
  {{sepal_length = 6.7, sepal_width = 3.0, petal_length = 5.2, petal_width = 2.3}},
]
""",
        "schema.json": json.dumps(FLOWER_SCHEMA),
        "predict.py": load
        + f"""

def species(flower):
    return "virginica" if flower["petal_length"] > 4 else "setosa"


def apply(data, model=None):
    if isinstance(data, list):
        return [{{"species": species(f), "petal_length": f["petal_length"]}} for f in data]
    return {{"species": species(data), "version": {version_note!r}}}
""",
    }


PICTURE_MODEL = {
    "model.toml": """
name = "picture"
title = "Picture mirror"
tagline = "Answers the picture it is sent"
runtime = "python"
entrypoint = "predict.py:apply"
license = "mit"
task = "image-processing"
[io]
input_schema = "schema.json"
""",
    "schema.json": json.dumps(
        {
            "type": "object",
            "properties": {
                "op": {"enum": ["echo", "info"], "default": "echo"},
                "image_base64": {
                    "type": "string",
                    "contentEncoding": "base64",
                    "contentMediaType": "image/png",
                    "description": "The picture",
                },
            },
            "required": ["image_base64"],
            "additionalProperties": False,
        }
    ),
    "predict.py": """
import base64


def apply(data):
    picture = base64.b64decode(data["image_base64"])
    if data.get("op") == "info":
        return {"bytes": len(picture), "png": picture[:8] == b"\\x89PNG\\r\\n\\x1a\\n"}
    return picture
""",
}


def png(width: int = 12, height: int = 8) -> bytes:
    """A small red PNG, made here (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def flowers(site, owner, storage, runner):
    """ada/flowers 1.0.0 and 2.0.0 (the newest; its model takes 4 s to load: a cold start)."""
    old = publish(owner, flowers_model("one"))
    new = publish(owner, flowers_model("two", slow_start=True))
    return old, new


@pytest.fixture
def picture(site, owner, storage, runner):
    return publish(owner, PICTURE_MODEL)


@pytest.fixture(params=["desktop", "phone"])
def width(request):
    return request.param


def console_page(open_page, sign_in, user, url, width):
    page = open_page(**({"viewport": PHONE} if width == "phone" else {}))
    # Chromium logs every 4xx answer to fetch() as a console error: the refusals are the test.
    page.log.allow(r"status of (400|429)")
    sign_in(page, user, next=url)
    expect(page.locator("#try-it")).to_be_visible()
    return page


def field(page, name: str):
    return page.locator(f'#try-form input[name$="{name}"]')


def test_iris_form_fields_bounds_json_examples_versions_and_cold_start(
    open_page, sign_in, flowers, member, screenshot, width
):
    page = console_page(open_page, sign_in, member, "/ada/flowers", width)
    form = page.locator("#try-form")
    # The form has a field per measurement, filled with the sample.
    for name in ("sepal_length", "sepal_width", "petal_length", "petal_width", "garden"):
        expect(field(page, name)).to_be_visible()
    expect(field(page, "petal_length")).to_have_value("1.4")
    expect(form).to_contain_text("Where it grew (optional)")
    screenshot(page, f"{width}-01-form")

    # A cold start says so and counts the seconds, then the answer comes.
    status = page.locator("#try-status")
    page.locator("#try-run").click()
    expect(status).to_contain_text(
        re.compile(r"Cold start: starting the model for this call… \d+ s")
    )
    screenshot(page, f"{width}-02-cold-start")
    expect(status).to_contain_text(
        re.compile(r"^Cold start · Model .* request [0-9a-f-]{36}$"), timeout=60_000
    )
    view = page.locator("#try-view")
    expect(view).to_contain_text("setosa")
    expect(view).to_contain_text("two")

    # A number out of bounds: the API refuses it, and says so at the field, naming the rule.
    field(page, "petal_length").fill("500")
    page.locator("#try-run").click()
    expect(status).to_contain_text("The input does not match the model's schema")
    expect(view).not_to_contain_text("setosa")  # the old result is gone
    error = form.locator(".rjf-error-text")
    expect(error).to_contain_text("must be at most 100 (maximum)")
    expect(field(page, "petal_length").locator("xpath=..")).to_contain_text(
        "must be at most 100 (maximum)"
    )
    screenshot(page, f"{width}-03-bounds-error-at-the-field")

    # The raw JSON tab follows the form, and the form follows the raw JSON.
    field(page, "petal_length").fill("4.5")
    page.locator("#try-tab-json").click()
    raw = page.locator("#try-input")
    expect(raw).to_have_value(re.compile(r'"petal_length": 4\.5'))
    raw.fill(
        json.dumps({"sepal_length": 5, "sepal_width": 3, "petal_length": 1.5, "petal_width": 0.3})
    )
    page.locator("#try-tab-form").click()
    expect(field(page, "petal_length")).to_have_value("1.5")
    screenshot(page, f"{width}-04-json-in-step")

    # A syntax error in the raw JSON is said at the box and clears the previous result.
    page.locator("#try-run").click()
    expect(view).to_contain_text("setosa")
    page.locator("#try-tab-json").click()
    raw.fill('{"sepal_length": ')
    expect(page.locator("#try-input-error")).to_contain_text("Not valid JSON yet")
    page.locator("#try-run").click()
    expect(status).to_contain_text("The input is not valid JSON")
    expect(page.locator("#try-result")).to_be_hidden()

    # Named examples: one flower, then two shown back as a table of records.
    page.locator("#try-example").select_option(label="A virginica")
    expect(raw).to_have_value(re.compile(r'"petal_length": 5\.2'))
    page.locator("#try-example").select_option(label="Two flowers")
    page.locator("#try-run").click()
    table = view.locator("table")
    expect(table.locator("th")).to_have_text(["species", "petal_length"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").nth(1)).to_contain_text("virginica")
    screenshot(page, f"{width}-05-example-as-table")

    # The version picker: 1.0.0 is called, and says so.
    page.locator("#try-version").select_option("1.0.0")
    expect(page.locator("[data-console-version]")).to_have_text("1.0.0")
    page.locator("#try-run").click()
    expect(view).to_contain_text("one")
    request_id = status.text_content().rsplit(" ", 1)[1]
    assert Invocation.objects.get(pk=request_id).version_label == "1.0.0"
    screenshot(page, f"{width}-06-older-version")


def test_image_model_file_picker_and_the_picture_shown_back(
    open_page, sign_in, picture, member, screenshot, width, tmp_path
):
    page = console_page(open_page, sign_in, member, "/ada/picture", width)
    image = tmp_path / "red.png"
    image.write_bytes(png())
    page.locator('#try-form input[type="file"]').set_input_files(str(image))
    # The model gets the file's base64, not a data: URL.
    page.locator("#try-tab-json").click()
    expect(page.locator("#try-input")).to_have_value(
        re.compile(re.escape(base64.b64encode(png()).decode()))
    )
    assert "data:" not in page.locator("#try-input").input_value()
    page.locator("#try-tab-form").click()
    page.locator("#try-run").click()
    picture_shown = page.locator("#try-view img")
    expect(picture_shown).to_be_visible(timeout=30_000)
    assert picture_shown.get_attribute("src").startswith("blob:")
    assert page.evaluate("document.querySelector('#try-view img').naturalWidth") == 12
    expect(page.locator("#try-download")).to_be_visible()
    screenshot(page, f"{width}-picture-shown-back")

    # A JSON answer is a tree.
    page.locator("#try-form select").first.select_option("info")
    page.locator("#try-run").click()
    expect(page.locator("#try-view .json-tree")).to_contain_text("png: true")
    screenshot(page, f"{width}-json-tree")


def test_a_visitor_tries_without_an_account_then_signs_up_and_comes_back(
    open_page, picture, owner, screenshot, width, settings, tmp_path
):
    from catalog.services import model_set_anonymous_tries

    settings.ANONYMOUS_TRIES_PER_DAY = 1
    model_set_anonymous_tries(actor=owner, model=picture.model, allowed=True)
    page = open_page(**({"viewport": PHONE} if width == "phone" else {}))
    page.log.allow(r"status of (400|429)")
    # The server's first page renders slowly on a busy machine (templates, Pygments' lexers).
    page.goto("/ada/picture", timeout=60_000)
    try_it = page.locator("#try-it")
    expect(try_it).to_contain_text("without an account: tries are limited per day")
    image = tmp_path / "red.png"
    image.write_bytes(png())
    page.locator('#try-form input[type="file"]').set_input_files(str(image))
    page.locator("#try-run").click()
    expect(page.locator("#try-view img")).to_be_visible(timeout=30_000)
    request_id = page.locator("#try-status").text_content().rsplit(" ", 1)[1]
    call = Invocation.objects.get(pk=request_id)
    assert call.caller_team.slug == "anonymous" and call.caller_user is None
    screenshot(page, f"{width}-01-anonymous-try")

    # The day's tries are used up: a clear 429 that says when the next one frees.
    page.locator("#try-run").click()
    expect(page.locator("#try-status")).to_contain_text("Limit reached")
    expect(page.locator("#try-view")).to_contain_text("the 1 try a day without an account")
    expect(page.locator("#try-view")).to_contain_text("Sign up to call it without this limit")
    screenshot(page, f"{width}-02-anonymous-limit")

    # Where tries are off, a visitor is offered to sign up, and comes back to the console.
    model_set_anonymous_tries(actor=owner, model=picture.model, allowed=False)
    page.goto("/ada/picture")
    expect(page.locator("#try-run")).to_have_count(0)
    page.locator("#try-signup").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/\?next="))
    screenshot(page, f"{width}-03-sign-up-form")
    form = page.locator("main form")
    form.locator("#id_username").fill(f"newcomer-{width}")
    form.locator("#id_email").fill("newcomer@example.com")
    form.locator("#id_password1").fill("a-very-good-password")
    form.locator("#id_password2").fill("a-very-good-password")
    form.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/ada/picture#try-it$"))
    expect(page.locator("#try-run")).to_be_visible()
    expect(page.locator(".account-name")).to_have_text(f"newcomer-{width}")
    screenshot(page, f"{width}-04-back-on-the-console")


def test_sign_up_never_sends_a_newcomer_off_the_site(open_page, site):
    page = open_page()
    page.goto("/accounts/signup/?next=https://evil.example/phish", timeout=60_000)
    form = page.locator("main form")
    form.locator("#id_username").fill("careful")
    form.locator("#id_email").fill("careful@example.com")
    form.locator("#id_password1").fill("a-very-good-password")
    form.locator("#id_password2").fill("a-very-good-password")
    form.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/teams/$"))
