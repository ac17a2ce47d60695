"""The model page leads with the model's card (owner, task, tags once, licence, latest version
and date, calls, price, metrics), then its README, the console and the snippets; every version
has its own page with its README, release notes, schema, and snippets and a console pinned to
it; private versions stay private on every path; cards and the home page's sections."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from catalog.models import Model
from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory
from tests.factories import MembershipFactory, TeamFactory, UserFactory, make_key
from tests.gateway.factories import InvocationFactory

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def manifest(model, readme, **extra):
    return {
        "name": model.slug,
        "runtime": "python",
        "entrypoint": "predict.py:apply",
        "readme": readme,
        "input_schema": SCHEMA,
        **extra,
    }


@pytest.fixture
def lab():
    team = TeamFactory(slug="lab", name="The Lab")
    model = ModelFactory(
        owner=team,
        slug="sentiment",
        title="Sentiment analysis",
        tagline="Positive or negative",
        task="text-classification",
        tags=["nlp", "text-classification", "reviews", "nlp"],
        license="mit",
        visibility="public",
        readme="# Version two readme",
    )
    old = VersionFactory(
        model=model,
        number="1.0.0",
        release_notes="The first release.",
        build=BuildFactory(
            model=model,
            sample_input={"text": "old"},
            manifest=manifest(model, "# Version one readme"),
        ),
    )
    new = VersionFactory(
        model=model,
        number="2.0.0",
        release_notes="Negations.",
        royalty_per_call=Decimal("0.0001"),
        build=BuildFactory(
            model=model,
            sample_input={"text": "new"},
            manifest=manifest(
                model,
                "# Version two readme",
                metrics=[{"name": "accuracy", "value": 0.797, "dataset": "reviews, 5-fold"}],
            ),
        ),
    )
    return model, old, new


def section_order(page: str, *markers: str) -> list[int]:
    return [page.index(marker) for marker in markers]


def test_the_model_page_leads_with_its_card_then_readme_then_console_then_snippets(lab):
    _model, _old, new = lab
    InvocationFactory.create_batch(3, version=new)
    page = Client().get("/lab/sentiment").content.decode()
    card = page[page.index('id="model-card"') : page.index('id="readme"')]
    assert "Sentiment analysis" in card and "Positive or negative" in card
    assert "The Lab" in card and 'data-fact="license">mit' in card
    assert re.search(r'data-fact="version"><span class="mono">2\.0\.0</span>', card)
    assert new.published_at.strftime("%Y-%m-%d") in card
    assert 'data-fact="calls">3<' in card
    assert "0.0001</span> credits per call" in card
    # The task once (as the task), each tag once.
    tags = card[card.index("data-tags") : card.index("data-facts")]
    assert tags.count(">text-classification<") == 1 and tags.count(">nlp<") == 1
    # The metrics block comes with the card, before the README.
    assert page.index('id="metrics"') < page.index('id="readme"')
    assert "accuracy" in page and "0.797" in page and "reviews, 5-fold" in page
    positions = section_order(
        page, 'id="model-card"', 'id="readme"', 'id="try-it"', 'id="snippets"'
    )
    assert positions == sorted(positions)
    # Every version is linked from the page.
    assert 'href="/lab/sentiment/1.0.0"' in page and 'href="/lab/sentiment/2.0.0"' in page


def test_a_version_page_is_that_version_throughout(lab):
    _model, _old, _new = lab
    response = Client().get("/lab/sentiment/1.0.0")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Version one readme" in page and "Version two readme" not in page
    assert "The first release." in page  # release notes
    assert "&quot;required&quot;" in page  # the input schema
    assert "/v1/algo/lab/sentiment/1.0.0" in page  # the endpoint and the console
    assert 'id="metrics"' not in page  # 1.0.0 declared none
    assert "data-older-version" in page and 'href="/lab/sentiment/2.0.0"' in page
    # The snippets call exactly this version, with its own sample input.
    snippets = page[page.index('id="snippets"') : page.index('id="versions"')]
    assert "/v1/algo/lab/sentiment/1.0.0" in snippets and "/2.0.0" not in snippets
    code = html.unescape(re.sub(r"<[^>]+>", "", snippets))
    assert '"text": "old"' in code and '"text": "new"' not in code


def test_the_console_of_a_version_page_calls_that_version(lab):
    user = UserFactory()
    client = Client()
    client.force_login(user)
    pinned = client.get("/lab/sentiment/1.0.0")
    assert pinned.context["console"]["config"]["endpoint"] == "/v1/algo/lab/sentiment/1.0.0"
    assert pinned.context["console"]["pinned"]  # no version picker on a version's page
    latest = client.get("/lab/sentiment")
    assert latest.context["console"]["config"]["endpoint"] == "/v1/algo/lab/sentiment/2.0.0"
    assert '"endpoint": "/v1/algo/lab/sentiment/2.0.0"' in latest.content.decode()


@pytest.mark.parametrize("number", ["3.0.0", "1.0", "01.0.0x", "1.0.0.0", "99999999999.0.0"])
def test_unknown_or_malformed_versions_are_404(lab, number):
    assert Client().get(f"/lab/sentiment/{number}").status_code == 404


def test_private_versions_are_private_on_every_path(lab):
    model, _old, _new = lab
    secret = VersionFactory(
        model=model,
        number="3.0.0",
        visibility="private",
        release_notes="Secret plans",
        build=BuildFactory(model=model, manifest=manifest(model, "# Secret readme")),
    )
    stranger, member = UserFactory(), UserFactory()
    MembershipFactory(team=model.owner, user=member, role="member")
    for client in (Client(), _signed_in(stranger)):
        assert client.get(f"/lab/sentiment/{secret.number}").status_code == 404
        page = client.get("/lab/sentiment").content.decode()
        assert "3.0.0" not in page and "Secret" not in page
    member_client = _signed_in(member)
    page = member_client.get("/lab/sentiment/3.0.0")
    assert page.status_code == 200 and b"Secret readme" in page.content
    # A private model's versions are 404 to others too, and to a key of another team.
    hidden = ModelFactory(owner=model.owner, slug="hidden", visibility="private")
    VersionFactory(model=hidden, number="1.0.0", visibility="private")
    assert Client().get("/lab/hidden/1.0.0").status_code == 404
    assert _signed_in(stranger).get("/lab/hidden/1.0.0").status_code == 404
    assert member_client.get("/lab/hidden/1.0.0").status_code == 200
    _key, other_secret = make_key(stranger)
    assert (
        Client().get("/lab/hidden/1.0.0", HTTP_AUTHORIZATION=f"Simple {other_secret}").status_code
        == 404
    )


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_snippets_name_the_signed_in_users_key_and_how_to_set_it(lab):
    user = UserFactory()
    key, secret = make_key(user)
    page = _signed_in(user).get("/lab/sentiment").content.decode()
    snippets = page[page.index('id="snippets"') :]
    assert key.prefix in snippets and secret not in page
    assert "MARKETPLACE_API_KEY" in snippets


# --- cards and the home page -----------------------------------------------------------------


def test_every_card_shows_calls_last_update_and_price(lab):
    model, _old, _new = lab
    Model.objects.filter(pk=model.pk).update(calls_30d=42)
    for url in ("/explore/", "/lab", "/"):
        page = Client().get(url).content.decode()
        card = page[page.index('href="/lab/sentiment"') :]
        card = card[: card.index("</article>")]
        assert "42 calls / 30 d" in card or "/ 7 d" in card, url
        assert 'data-card="updated"' in card and model.updated_at.strftime("%Y-%m-%d") in card
        assert "0.0001 cr/call" in card, url


def test_trending_needs_calls_in_the_last_seven_days_over_a_floor():
    quiet = VersionFactory(model=ModelFactory(slug="zz-test-model", visibility="public"))
    busy = VersionFactory(model=ModelFactory(slug="busy", visibility="public"))
    old = VersionFactory(model=ModelFactory(slug="used-long-ago", visibility="public"))
    page = Client().get("/").content.decode()
    # Nothing called: Trending is empty, not a copy of Newest, and no test model leads it.
    assert "data-trending-empty" in page and "data-trending>" not in page
    InvocationFactory.create_batch(2, version=quiet)  # under the floor
    InvocationFactory.create_batch(4, version=busy)
    for invocation in InvocationFactory.create_batch(9, version=old):
        type(invocation).objects.filter(pk=invocation.pk).update(
            created_at=timezone.now() - timedelta(days=8)
        )
    page = Client().get("/").content.decode()
    trending = page[page.index("data-trending>") : page.index('id="newest-title"')]
    assert "/busy" in trending and "4 calls / 7 d" in trending
    assert "zz-test-model" not in trending and "used-long-ago" not in trending


def test_task_tiles_and_cards_have_a_distinct_icon_per_task():
    for task in ("text-classification", "image-classification", "tabular-regression", "utility"):
        VersionFactory(model=ModelFactory(task=task, visibility="public"))
    page = Client().get("/").content.decode()
    tiles = page[page.index('id="tasks-title"') : page.index('id="trending-title"')]
    icons = re.findall(r'data-task-icon="([a-z-]+)"', tiles)
    assert len(icons) == 4 and len(set(icons)) == 4
