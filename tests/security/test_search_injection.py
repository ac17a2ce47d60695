"""Injection through search: SQL metacharacters, tsquery and websearch operators, trigram
edge cases, NUL bytes, very long strings, regex and LIKE wildcards, Elasticsearch query
string syntax and JSON fragments, through the explore page, its live fragment,
/v1/models, /v1/models/suggest and every filter parameter. Never a 500, private models
never appear, and text that only differs by punctuation finds what its words find.

Elasticsearch is not running here: its half is the pure query builders of
catalog/search/queries.py, checked so user text can only reach the positions that treat it
as text, and never the visibility filter."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from catalog.search import CatalogQuery, search
from catalog.search import queries as q
from marketplace.accounts.principals import Principal
from tests.catalog.factories import ModelFactory, VersionFactory
from tests.factories import TeamFactory, UserFactory, make_key

pytestmark = pytest.mark.django_db

SECRET_WORDS = "sentiment translate vision secret private everything"

HOSTILE = [
    "' OR '1'='1",
    "sentiment' OR 1=1 --",
    "sentiment'; DROP TABLE catalog_model; --",
    '" OR ""="',
    "sentiment) OR (1=1",
    "1; SELECT pg_sleep(5)",
    "sentiment UNION SELECT slug FROM catalog_model",
    "sentiment & !translate",
    "sentiment | private",
    "sentiment <-> secret",
    "sentiment:* & secret:*",
    "!!!!",
    "&&&&",
    "((((",
    "))))",
    ":*",
    "'",
    "''''",
    '"',
    '"""',
    '"unclosed phrase',
    "-",
    "--",
    "-sentiment",
    "- -",
    "or",
    "OR OR OR",
    "sentiment or",
    "or sentiment",
    "%",
    "%%%%",
    "_",
    "____",
    "\\",
    "\\\\\\\\",
    "sent%",
    "sent_ment",
    "%sentiment%",
    ".*",
    "^.*$",
    "(a+)+$",
    "[a-z]{1,1000}",
    "sentiment\\",
    "\\x00",
    "name:* OR visibility:private",
    "visibility:private",
    "_exists_:readme",
    "_exists_",
    "*",
    "?",
    "~",
    "sentiment~2",
    "sentiment^100",
    "title:/.*/",
    '{"match_all": {}}',
    '{"bool": {"must_not": {"term": {"visibility": "public"}}}}',
    '"}}, "query": {"match_all": {}}, "x": {"',
    "{{suggestion}}",
    "a" * 200,
    "ab " * 66,
    "\u202e\u200b\ufeff",
    "ñandú ünïcödé 日本語 😀",
    "²³",
    "sentiment\u0301",
    "İstanbul",
    "\t\n\r",
    "   ",
]
NUL_TEXTS = ["\x00", "sentiment\x00", "\x00' OR 1=1"]
TOO_LONG = ["x" * 201, "sentiment " * 100, "%" * 10_000]


@pytest.fixture
def catalogue(db):
    """Public models, and a private one whose every field holds every word searched."""
    ada = TeamFactory(slug="ada")
    for slug, title, tags, task in (
        ("sentiment", "Sentiment analysis", ["nlp"], "text-classification"),
        ("emotions", "Emotion detector", ["nlp"], "text-classification"),
        ("translate", "English to French", ["nlp", "translation"], "translation"),
        ("vision", "Image labels", ["vision"], "image-classification"),
    ):
        model = ModelFactory(
            owner=ada, slug=slug, title=title, tags=tags, task=task, visibility="public"
        )
        VersionFactory(model=model)
    hidden = TeamFactory(slug="zqhidden", name="Zqhidden")
    secret = ModelFactory(
        owner=hidden,
        slug="zqprivate",
        title=f"Zqprivate {SECRET_WORDS}",
        tagline=SECRET_WORDS,
        readme=" ".join(HOSTILE[:20]) + " " + SECRET_WORDS,
        tags=["nlp", "vision", "private"],
        task="text-classification",
        framework="pytorch",
        license="mit",
        visibility="private",
    )
    VersionFactory(model=secret, visibility="private")
    return secret


@pytest.fixture
def outsider_api(db):
    """A signed-in caller who is not a member of the private model's team."""
    user = UserFactory(username="eve")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(user)[1]}")
    return client


def _plain_words(text: str) -> str:
    return " ".join(q.words(text))


def _visible_slugs(text: str) -> list[str]:
    found = search(Principal(user=None, key=None), CatalogQuery.from_params({"search": text}))
    return sorted(m.slug for m in found.models)


def _assert_private_absent(content: bytes | str, where: str) -> None:
    text = content if isinstance(content, str) else content.decode()
    assert "zqprivate" not in text.lower(), f"{where}: the private model leaked"
    assert "zqhidden" not in text.lower(), f"{where}: the private model's owner leaked"


def _search_as(principal, params: dict):
    """The engine's answer to what the API and the pages parse from `params`."""
    return search(principal, CatalogQuery.from_params(params))


def test_hostile_text_through_every_search_surface(catalogue, outsider_api):
    """Every text through the engine as an outsider, and through one of the HTTP surfaces
    (in turn: the API, the API as an outsider, autocompletion, the page, its live
    fragment), so each surface sees a share of every kind of text."""
    outsider = Principal(user=UserFactory(username="mallory"))
    anonymous_api, page = APIClient(), Client()
    surfaces = [
        lambda t: anonymous_api.get("/v1/models", {"search": t}),
        lambda t: outsider_api.get("/v1/models", {"search": t, "sort": "recent"}),
        lambda t: outsider_api.get("/v1/models/suggest", {"q": t}),
        lambda t: page.get("/explore/", {"q": t}),
        lambda t: page.get("/explore/", {"q": t}, HTTP_X_LIVE_SEARCH="1"),
    ]
    problems = []
    for index, text in enumerate(HOSTILE):
        found = _search_as(outsider, {"search": text})
        assert "zqprivate" not in {m.slug for m in found.models}, text
        assert found.count == len(found.models), text  # counts only what may be seen
        assert "zqhidden" not in {f["value"] for f in found.facets["owner"]}, text
        response = surfaces[index % len(surfaces)](text)
        if response.status_code != 200:
            problems.append(f"surface {index % len(surfaces)} {text!r}: {response.status_code}")
            continue
        _assert_private_absent(response.content, f"surface {index % len(surfaces)} {text!r}")
    assert not problems, "\n".join(problems)


def test_punctuation_means_nothing_more_than_the_words(catalogue):
    """Text without websearch syntax (quotes, -word, or) finds what its words alone find:
    SQL, tsquery, LIKE, regex and Elasticsearch syntax are just punctuation."""
    checked = 0
    for text in HOSTILE:
        if q.uses_operators(text) or " OR " in f" {text} " or "--" in text:
            continue
        words = _plain_words(text)
        if words:
            assert _visible_slugs(text) == _visible_slugs(words), text
        elif not text.strip():  # only blanks: no search at all, every public model
            assert _visible_slugs(text) == _visible_slugs(""), text
        else:  # no word at all: nothing to match (both engines answer match_none)
            assert _visible_slugs(text) == [], text
        checked += 1
    assert checked > 40
    # Sanity: the words do find things, and a classic injection finds no more than them.
    assert _visible_slugs("sentiment") == ["sentiment"]
    assert _visible_slugs("sentiment' OR 1=1 --") in ([], ["sentiment"])
    assert _visible_slugs("' OR '1'='1") == []


def test_operators_keep_their_documented_meaning(catalogue):
    assert _visible_slugs('"sentiment analysis"') == ["sentiment"]
    assert _visible_slugs("sentiment or translate") == ["sentiment", "translate"]
    assert "sentiment" not in _visible_slugs("nlp -sentiment")


@pytest.mark.parametrize("text", NUL_TEXTS + TOO_LONG, ids=lambda t: repr(t[:12]))
def test_nul_and_overlong_text_is_a_clear_400(catalogue, text):
    response = APIClient().get("/v1/models", {"search": text})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["error_type"] == "InputError" and error["message"]
    page = Client().get("/explore/", {"q": text})
    assert page.status_code == 200  # the page shows its message and every model
    _assert_private_absent(page.content, "explore")
    live = Client().get("/explore/", {"q": text}, HTTP_X_LIVE_SEARCH="1")
    assert live.status_code == 400
    suggest = APIClient().get("/v1/models/suggest", {"q": text})
    assert suggest.status_code in (200, 400), suggest.content
    _assert_private_absent(suggest.content, "suggest")


FILTER_VALUES = [
    "text-classification' OR '1'='1",
    "%",
    "_",
    "\\",
    "*",
    "private",
    "hidden",
    "pytorch",
    "mit",
    "nlp,private,vision",
    ",,,,",
    "nlp," * 500,
    "x" * 5000,
    '{"$ne": null}',
    "name:* OR visibility:private",
    "\u202e",
]
BAD_FILTER_VALUES = ["\x00", "nlp\x00"]


FILTERS = ["tags", "task", "framework", "license", "owner", "sort", "page", "page_size"]
NUMBERS = ["-1", "0", "1e9", "99999999999999999999", "NaN", "0x10", " 2 "]


def test_every_filter_parameter(catalogue, outsider_api):
    """Every hostile value in every filter: the engine as an outsider sees no private model
    (or the value is refused as input); and over HTTP, a value of each kind per parameter
    is a 200 or a clear 400, never a 500."""
    from marketplace.core.errors import InputError

    outsider = Principal(user=UserFactory(username="mallory"))
    for name in FILTERS:
        for value in FILTER_VALUES + BAD_FILTER_VALUES + NUMBERS:
            try:
                found = _search_as(outsider, {name: value, "search": "nlp"})
            except InputError:
                continue
            assert "zqprivate" not in {m.slug for m in found.models}, (name, value)
            assert "zqhidden" not in {f["value"] for f in found.facets["owner"]}, (name, value)
    problems = []
    for index, name in enumerate(FILTERS):
        for value in (FILTER_VALUES[index], "nlp\x00", NUMBERS[index % len(NUMBERS)], "1e9"):
            response = outsider_api.get("/v1/models", {name: value, "search": "nlp"})
            if response.status_code == 200:
                _assert_private_absent(response.content, f"{name}={value[:20]!r}")
            elif response.status_code == 400:
                assert response.json()["error"]["error_type"] == "InputError"
            else:
                problems.append(f"/v1/models {name}={value[:30]!r}: {response.status_code}")
        for value, headers in (
            ("99999999999999999999", {"HTTP_X_LIVE_SEARCH": "1"}),
            (FILTER_VALUES[-index - 1], {}),
        ):
            response = Client().get("/explore/", {name: value, "q": "nlp"}, **headers)
            if response.status_code not in (200, 400):
                problems.append(f"/explore/ {name}={value[:30]!r}: {response.status_code}")
            _assert_private_absent(response.content, f"explore {name}={value[:20]!r}")
    for value in ("99999999999999999999", "-5", "abc", "\x00"):
        response = Client().get("/ada", {"page": value})
        if response.status_code != 200:
            problems.append(f"/ada?page={value!r}: {response.status_code}")
    assert not problems, "\n".join(problems)


def test_member_still_finds_the_private_model(catalogue):
    """The other side of the visibility checks above: they are not vacuous."""
    member = UserFactory(username="hid")
    from tests.factories import MembershipFactory

    MembershipFactory(team=catalogue.owner, user=member)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(member)[1]}")
    body = client.get("/v1/models", {"search": "zqprivate"}).json()
    assert [m["name"] for m in body["results"]] == ["zqprivate"]
    body = client.get("/v1/models", {"search": "sentiment"}).json()
    assert {m["name"] for m in body["results"]} == {"sentiment", "zqprivate"}


# -- Elasticsearch: the pure query builders -----------------------------------------------

# Where user text may appear in a request body, as a string value: positions that treat it
# as text or as one exact term, never as query syntax or JSON.
TEXT_POSITIONS = {
    "simple_query_string.query",
    "multi_match.query",
    "term.name.keyword",
    "prefix.name.keyword.value",
    "suggest.text",
}
QUERY_PARSING_KEYS = {"query_string", "script", "wrapper", "template", "regexp", "wildcard"}


def _strings(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, path)
    elif isinstance(node, str):
        yield ".".join(p for p in path if not p.startswith("_")), node


def _keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


def _ends_in_text_position(path: str) -> bool:
    return any(path.endswith(position) for position in TEXT_POSITIONS)


BUILDER_TEXTS = [t for t in HOSTILE if t.strip()] + [
    "sentiment",
    "-secret",
    '"visibility private"',
    "public OR private",
]


@pytest.mark.parametrize("text", BUILDER_TEXTS, ids=lambda t: repr(t[:20]))
def test_elasticsearch_bodies_keep_user_text_in_text_positions(text):
    owners = [7, 3]
    query = CatalogQuery(text=text, tags=("nlp",), task=text[:64], owner="ada", page=10**6)
    bodies = {
        "search": q.elasticsearch_search_body(query, owners),
        "anonymous search": q.elasticsearch_search_body(query, []),
        "suggest": q.elasticsearch_suggest_body(text, owners),
        "corrections": q.elasticsearch_corrections_body(text, owners),
    }
    for name, body in bodies.items():
        encoded = json.dumps(body)
        assert json.loads(encoded) == body  # plain JSON data, nothing else
        assert not QUERY_PARSING_KEYS & set(_keys(body)), name
        for path, value in _strings(body):
            if value == text or (text.strip() and text.strip().lower() == value):
                assert _ends_in_text_position(path) or path.endswith("term.task"), (name, path)
            if path.endswith("simple_query_string.query") and value != "{{suggestion}}":
                # Only words, spaces and the translation's own operators reach it.
                assert set(value) <= set('abcdefghijklmnopqrstuvwxyz0123456789_ ()|-"') or all(
                    c.isalnum() or c in ' ()|-"_' for c in value
                ), (name, value)
                assert ":" not in value and "*" not in value and "{" not in value, value
        _assert_visibility_filter(body, owners if "anonymous" not in name else [])


def _assert_visibility_filter(body, owners):
    """The visibility filter is the first filter of the top-level bool, exactly the one for
    the principal, whatever the text (and the same in the collate query)."""
    expected = q.visibility_filter(owners)
    top = body["query"]
    if "function_score" in top:
        top = top["function_score"]["query"]
    assert top["bool"]["filter"][0] == expected
    visibility_terms = [value for path, value in _strings(body) if path.endswith("visibility")]
    assert visibility_terms and set(visibility_terms) == {"public"}
    collate = body.get("suggest", {}).get("correction", {}).get("phrase", {}).get("collate")
    if collate:
        assert collate["query"]["source"]["bool"]["filter"][0] == expected


def test_simple_query_string_translation_examples():
    assert q.simple_query_string("name:* OR visibility:private") == "(name | (visibility private))"
    assert q.simple_query_string("_exists_:readme") == "(_exists_ readme)"
    assert q.simple_query_string('{"match_all": {}}') == "(match_all)" or (
        q.simple_query_string('{"match_all": {}}') == "match_all"
    )
    assert q.simple_query_string("' OR '1'='1") == "1 | (1 1)" or "OR" not in (
        q.simple_query_string("' OR '1'='1")
    )
    assert q.simple_query_string("%%% ___ \\\\") in ("___", "")
    assert q.simple_query_string("-secret") == "-secret"


def test_result_window_is_capped_for_huge_pages():
    body = q.elasticsearch_search_body(CatalogQuery(text="x", page=10**12), [])
    assert 0 <= body["from"] <= q.MAX_RESULT_WINDOW and body["size"] >= 0
