"""The search page as a browser uses it: live results fragment, marked matches, facet links
that toggle, and corrections when nothing matches (never from a private model)."""

from __future__ import annotations

import pytest

from catalog.models import Model
from catalog.search.highlight import highlight, query_terms
from marketplace.accounts.models import Membership
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

LIVE = {"HTTP_X_LIVE_SEARCH": "1"}


@pytest.fixture
def shelf(db):
    acme, hidden = TeamFactory(slug="acme"), TeamFactory(slug="hidden")
    rows = [
        ("sentiment", "Sentiment analysis", "Positive or negative score for English text", ["nlp"]),
        ("translator", "Translator", "Translate German to English", ["nlp", "translation"]),
        ("digits", "Digit classifier", "Handwritten digits from 8x8 images", ["vision"]),
    ]
    for slug, title, tagline, tags in rows:
        Model.objects.create(
            owner=acme,
            slug=slug,
            title=title,
            tagline=tagline,
            tags=tags,
            task="classification",
            visibility="public",
        )
    Model.objects.create(
        owner=hidden,
        slug="zeppelin",
        title="Zeppelin secret",
        tagline="Private airship planner",
        visibility="private",
    )
    return acme, hidden


def test_live_search_answers_the_results_fragment_only(shelf, client):
    page = client.get("/explore/", {"q": "sentim"}, **LIVE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" not in html and 'data-count="1"' in html
    assert "<mark>Sentiment</mark> analysis" in html
    assert "X-Live-Search" in page["Vary"]
    full = client.get("/explore/", {"q": "sentim"})
    assert b"<html" in full.content and b'id="search-results"' in full.content


def test_a_bad_live_query_is_a_400_fragment(shelf, client):
    page = client.get("/explore/", {"q": "x", "sort": "sideways"}, **LIVE)
    assert page.status_code == 400 and b"sort: one of" in page.content


def test_facet_links_toggle_and_active_filters_can_be_removed(shelf, client):
    page = client.get("/explore/", {"tags": "nlp"})
    assert {m.slug for m in page.context["models"]} == {"sentiment", "translator"}
    tags = {f.value: f for f in page.context["facets"]["tags"]}
    assert tags["nlp"].active and tags["nlp"].url == "?"
    assert tags["translation"].url == "?tags=nlp%2Ctranslation"
    narrowed = client.get("/explore/" + tags["translation"].url)
    assert [m.slug for m in narrowed.context["models"]] == ["translator"]
    (nlp, _translation) = narrowed.context["active_filters"]
    assert client.get("/explore/" + nlp.remove_url).context["count"] == 1
    assert b'aria-current="true"' in narrowed.content


def test_misspelt_words_are_answered_corrected_and_the_page_says_so(shelf, client):
    page = client.get("/explore/", {"q": "sentimemt scroe"})
    assert page.context["corrected_query"] == "sentiment score"
    assert [m.slug for m in page.context["models"]] == ["sentiment"]
    assert b"Showing results for" in page.content and b"search instead for" in page.content
    # The link that insists on the words as typed finds nothing, and suggests the correction.
    verbatim = client.get("/explore/" + page.context["verbatim_url"])
    assert verbatim.context["count"] == 0 and not verbatim.context["corrected_query"]
    texts = [text for text, _ in verbatim.context["corrections"]]
    assert texts == ["sentiment score"]
    assert b"Did you mean" in verbatim.content


def test_corrections_never_come_from_a_private_model(shelf, client):
    outsider = client.get("/explore/", {"q": "zepelin"})
    assert outsider.context["count"] == 0
    assert outsider.context["corrections"] == []
    assert b"zeppelin" not in outsider.content.lower()
    member = UserFactory()
    Membership.objects.create(team=shelf[1], user=member, role="member")
    client.force_login(member)
    insider = client.get("/explore/", {"q": "zepelin"})
    # A member finds it by the typo directly.
    assert [m.slug for m in insider.context["models"]] == ["zeppelin"]


def test_empty_state_offers_to_drop_filters(shelf, client):
    page = client.get("/explore/", {"q": "sentiment", "tags": "vision"})
    assert page.context["count"] == 0
    assert b"Search without filters" in page.content
    assert page.context["clear_filters_url"] == "?q=sentiment"


@pytest.mark.parametrize(
    ("text", "query", "expected"),
    [
        ("Sentiment analysis", "sentiment", "<mark>Sentiment</mark> analysis"),
        ("Translator", "translate", "<mark>Translator</mark>"),
        ("Translate German", "transl", "<mark>Translate</mark> German"),
        ("digits <b>bold</b>", "bold", "digits &lt;b&gt;<mark>bold</mark>&lt;/b&gt;"),
        (
            "<script>alert(1)</script>",
            "script",
            "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;",
        ),
        ("speech to text", "-speech text", "speech to <mark>text</mark>"),
        ("cats or dogs", "cats or dogs", "<mark>cats</mark> or <mark>dogs</mark>"),
        ("Käse Übersetzer", "über", "Käse <mark>Übersetzer</mark>"),
        ("plain", "", "plain"),
    ],
)
def test_highlight_marks_matches_and_escapes_everything_else(text, query, expected):
    assert str(highlight(text, query)) == expected


def test_query_terms_skip_excluded_words_and_operators():
    assert query_terms('"image classifier" -dogs or cats') == ("cats", "classifier", "image")
