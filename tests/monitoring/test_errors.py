"""The errors tab: only the model's owners see it (everyone else gets 404, including the
model's callers and members of other teams), filters by version and error type work, pages
follow one another without gaps, and what callers sent or models said is shown as text."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from django.test import Client

from marketplace.core.errors import InputError
from monitoring.selectors import model_error_types, model_errors
from tests.catalog.factories import ModelFactory, VersionFactory
from tests.factories import MembershipFactory, UserFactory

from .world import NOW, build_world, make_call

pytestmark = pytest.mark.django_db

URL = "/acme/vision/monitoring/errors"
API = "/v1/models/acme/vision/errors"


@pytest.fixture
def world(fixed_now):
    return build_world(calls=200)


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def shown_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-request-id="([0-9a-f-]{36})">', html)


def newest_errors(world, version=None, kind=None) -> list[str]:
    def kind_of(call):
        given = (call.error or {}).get("error_type")
        return given or ("TimeoutError" if call.status == "timeout" else "Error")

    errors = [
        c
        for c in world.calls
        if c.status in ("failed", "timeout")
        and (version is None or c.version_label == version)
        and (kind is None or kind_of(c) == kind)
    ]
    errors.sort(key=lambda c: (c.created_at, c.pk), reverse=True)
    return [str(c.pk) for c in errors]


def test_owners_see_the_errors_tab_and_everyone_else_gets_404(world):
    assert browser(world.owner).get(URL).status_code == 200
    second_owner = UserFactory(username="acme-billing")
    MembershipFactory(team=world.owners, user=second_owner, role="billing")
    assert browser(second_owner).get(URL).status_code == 200
    # A member of the team that calls the model, a stranger, anonymous visitors.
    assert browser(world.caller).get(URL).status_code == 404
    assert browser(world.outsider).get(URL).status_code == 404
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    # The same for the overview tab and the API.
    assert browser(world.caller).get("/acme/vision/monitoring").status_code == 404
    assert browser(world.owner).get(API).status_code == 200
    assert browser(world.caller).get(API).status_code == 404
    assert browser(world.outsider).get(API).status_code == 404
    assert Client().get(API).status_code == 401


def test_a_private_model_is_not_found_rather_than_forbidden(world):
    ModelFactory(owner=world.owners, slug="secret", visibility="private")
    assert browser(world.owner).get("/acme/secret/monitoring/errors").status_code == 200
    response = browser(world.caller).get("/acme/secret/monitoring/errors")
    assert response.status_code == 404
    assert "secret" not in response.content.decode().split("<main", 1)[1].split("</main>")[0]


def test_the_tab_lists_the_latest_errors_with_their_details(world):
    html = browser(world.owner).get(URL).content.decode()
    ids = shown_ids(html)
    assert ids == newest_errors(world)[:50]
    newest = next(c for c in world.calls if str(c.pk) == ids[0])
    row = re.search(rf'<tr data-request-id="{newest.pk}">(.*?)</tr>', html, re.S)[1]
    assert f'data-field="version">{newest.version_label}<' in row
    assert f'data-field="caller">{newest.caller_team.slug}<' in row
    assert f"?id={newest.pk}" in row  # the request log
    assert newest.error["message"].replace("'", "&#x27;") in row
    if "stacktrace" in newest.error:
        assert "<details" in row and "Traceback (most recent call last)" in row


@pytest.mark.parametrize(
    ("version", "kind"),
    [("1.1.0", None), (None, "TimeoutError"), (None, "Error"), ("2.0.0", "AlgorithmError")],
)
def test_filters_by_version_and_error_type(world, version, kind):
    params = {"version": version or "", "error_type": kind or ""}
    html = browser(world.owner).get(URL, params).content.decode()
    want = newest_errors(world, version, kind)
    assert want, "the generated world has such errors"
    assert shown_ids(html) == want[:50]
    api = browser(world.owner).get(API, params | {"limit": 200}).json()
    assert [e["request_id"] for e in api["errors"]] == want[:200]
    assert all(e["version"] == version for e in api["errors"] if version)
    assert all(e["error_type"] == kind for e in api["errors"] if kind)


def test_pages_follow_one_another_without_gaps_or_repeats(world):
    seen, before = [], None
    while True:
        page = model_errors(world.model, limit=7, before=before)
        seen += [str(i.pk) for i in page.errors]
        if page.next_cursor is None:
            break
        before = page.next_cursor
    assert seen == newest_errors(world)
    # The HTML page links to the next one.
    html = browser(world.owner).get(URL).content.decode()
    next_url = re.search(r'href="([^"]+)" rel="next"', html)[1].replace("&amp;", "&")
    second = browser(world.owner).get(next_url).content.decode()
    assert shown_ids(second) == newest_errors(world)[50:100]


def test_calls_at_the_same_instant_are_paged_by_id():
    rng = random.Random(1)
    version = VersionFactory()
    for _ in range(9):
        make_call(rng, version, created_at=NOW, status="failed")
    seen, before = [], None
    for _ in range(5):
        page = model_errors(version.model, limit=2, before=before)
        seen += [i.pk for i in page.errors]
        before = page.next_cursor
        if before is None:
            break
    assert len(seen) == 9 and len(set(seen)) == 9


def test_a_bad_cursor_or_limit_is_a_clear_400(world):
    with pytest.raises(InputError):
        model_errors(world.model, before="not-a-cursor")
    with pytest.raises(InputError):
        model_errors(world.model, limit=0)
    response = browser(world.owner).get(API, {"before": "123.xyz"})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("before:")
    assert browser(world.owner).get(API, {"limit": "many"}).status_code == 400
    assert browser(world.owner).get(URL, {"before": "nope"}).status_code == 400


def test_inputs_and_messages_are_shown_as_text_not_markup(world):
    script = '<script>alert("input")</script>' + "x" * 200
    make_call(
        random.Random(2),
        world.versions["1.0.0"],
        created_at=NOW + timedelta(seconds=1),
        status="failed",
        input_preview=script[:128],
        error={
            "message": '<img src=x onerror=alert("message")>',
            "error_type": "<b>Bold</b>",
            "stacktrace": "</pre><script>alert('trace')</script>",
        },
    )
    html = browser(world.owner).get(URL).content.decode()
    assert "<script>alert(" not in html
    assert "<img src=x" not in html and "<b>Bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;input&quot;)&lt;/script&gt;" + "x" * 97 in html
    assert "&lt;img src=x onerror=alert(&quot;message&quot;)&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(&#x27;trace&#x27;)&lt;/script&gt;" in html
    assert "&lt;b&gt;Bold&lt;/b&gt;" in html  # in the row and in the filter
    api = browser(world.owner).get(API).json()["errors"][0]
    assert api["input_preview"] == script[:128] and len(api["input_preview"]) == 128
    assert api["stacktrace"] == "</pre><script>alert('trace')</script>"


def test_error_types_for_the_filter(world):
    assert set(model_error_types(world.model)) <= {
        "AlgorithmError",
        "ValueError",
        "TimeoutError",
        "Error",
    }
    assert "TimeoutError" in model_error_types(world.model, days=40)
