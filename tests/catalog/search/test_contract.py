"""The search contract: relevance, facets and visibility on a generated catalogue of
hundreds of models, through the API and pages, for every engine.

The PostgreSQL engine always runs. The Elasticsearch one runs when ELASTICSEARCH_URL is set
in the environment: each test then indexes the catalogue with `manage.py search_reindex`
under an index prefix of its own, searches through the same functions the API uses, fails
if any call fell back to PostgreSQL, and deletes its indices afterwards."""

from __future__ import annotations

import io
import logging
import os
import random
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from rest_framework.test import APIClient

from catalog.models import Model
from marketplace.accounts.models import Membership
from tests.factories import TeamFactory, UserFactory, make_key

pytestmark = pytest.mark.django_db

ELASTICSEARCH_URL = os.environ.get("ELASTICSEARCH_URL", "")
ENGINES = [
    "postgresql",
    pytest.param(
        "elasticsearch",
        marks=pytest.mark.skipif(
            not ELASTICSEARCH_URL,
            reason="ELASTICSEARCH_URL is not set: no Elasticsearch to run the contract against",
        ),
    ),
]
POSTGRESQL_ONLY = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)

WORDS = [
    "vision",
    "speech",
    "audio",
    "tabular",
    "forecast",
    "graph",
    "ranking",
    "anomaly",
    "detection",
    "translation",
    "summarisation",
    "clustering",
    "regression",
    "segmentation",
    "captioning",
    "parsing",
    "tagging",
]
TASKS = ["text-classification", "image-classification", "translation", "tabular-regression"]
FRAMEWORKS = ["scikit-learn", "onnx", "pytorch", "numpy"]
LICENSES = ["mit", "apache-2.0", "bsd-3-clause"]


@pytest.fixture(params=ENGINES)
def engine(request, settings):
    """The engine under test, configured as a deployment would configure it."""
    if request.param == "elasticsearch":
        settings.ELASTICSEARCH_URL = ELASTICSEARCH_URL
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        settings.ELASTICSEARCH_INDEX_PREFIX = f"test-{worker}-{uuid.uuid4().hex[:8]}"
    else:
        settings.ELASTICSEARCH_URL = ""
    return request.param


@pytest.fixture(autouse=True)
def _no_fall_back(caplog):
    """An engine that fell back to PostgreSQL did not pass the contract itself."""
    yield
    fallbacks = [
        r.getMessage()
        for r in caplog.records
        if r.name == "catalog.search.engines" and r.levelno >= logging.WARNING
    ]
    assert not fallbacks, fallbacks


def _index_catalogue():
    """What an operator runs: the reindex command (template, new index, alias switch)."""
    call_command("search_reindex", stdout=io.StringIO())


def _drop_indices():
    from catalog.search import documents
    from catalog.search.engines import elasticsearch

    es = elasticsearch.writer().options(ignore_status=404)
    names = list(es.indices.get(index=documents.index_pattern(), expand_wildcards="all"))
    if names:
        es.indices.delete(index=names)
    es.indices.delete_index_template(name=documents.template_name())


def _expected_engine() -> str:
    return "elasticsearch" if django_settings.ELASTICSEARCH_URL else "postgresql"


@pytest.fixture
def catalogue(db, engine):
    rng = random.Random(42)
    owners = [TeamFactory(slug=f"org-{i}") for i in range(6)]
    rows = []
    for i in range(400):
        a, b = rng.sample(WORDS, 2)
        rows.append(
            Model(
                owner=owners[i % len(owners)],
                slug=f"{a}-{b}-{i}",
                title=f"{a.title()} {b} model {i}",
                tagline=f"A {a} model for {b} made with care",
                task=rng.choice(TASKS),
                framework=rng.choice(FRAMEWORKS),
                license=rng.choice(LICENSES),
                tags=sorted({a, b}),
                visibility="public",
                calls_30d=rng.randint(0, 1000),
            )
        )
    rows.append(
        Model(
            owner=owners[0],
            slug="sentiment",
            title="Sentiment analysis",
            tagline="Positive or negative score for English product reviews",
            task="text-classification",
            framework="scikit-learn",
            license="mit",
            tags=["nlp", "sentiment"],
            visibility="public",
            calls_30d=5,
        )
    )
    rows.append(
        Model(
            owner=owners[1],
            slug="sentiment-multilingual",
            title="Multilingual sentiment",
            tagline="Sentiment in forty languages",
            task="text-classification",
            framework="onnx",
            license="mit",
            tags=["nlp"],
            visibility="public",
            calls_30d=900,
        )
    )
    rows.append(
        Model(
            owner=owners[2],
            slug="secret-sauce",
            title="Secret sauce recommender",
            tagline="Our confidential ranking of product reviews",
            task="text-classification",
            framework="onnx",
            license="proprietary",
            tags=["confidential"],
            visibility="private",
        )
    )
    Model.objects.bulk_create(rows)
    if engine != "elasticsearch":
        yield owners
        return
    _index_catalogue()
    try:
        yield owners
    finally:
        _drop_indices()


def _search(client, **params):
    response = client.get("/v1/models", params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["engine"] == _expected_engine()
    return body


def _names(body):
    return [f"{r['owner']}/{r['name']}" for r in body["results"]]


def test_exact_name_first(catalogue):
    body = _search(APIClient(), search="sentiment")
    assert _names(body)[0] == "org-0/sentiment"  # although the multilingual one is popular
    assert "org-1/sentiment-multilingual" in _names(body)


def test_a_tagline_phrase_finds_its_model_in_the_top_3(catalogue):
    body = _search(APIClient(), search="positive or negative score for product reviews")
    assert "org-0/sentiment" in _names(body)[:3]
    body = _search(APIClient(), search='"forty languages"')
    assert _names(body)[:1] == ["org-1/sentiment-multilingual"]


@pytest.mark.parametrize("typo", ["sentimnt", "sentinent", "snetiment", "multilingal"])
def test_a_one_letter_typo_still_finds_it(catalogue, typo):
    assert any("sentiment" in n for n in _names(_search(APIClient(), search=typo))[:3])


def test_prefix_while_typing_and_minus_and_or(catalogue):
    assert "org-0/sentiment" in _names(_search(APIClient(), search="sentim"))
    minus = _names(_search(APIClient(), search="sentiment -multilingual"))
    assert "org-0/sentiment" in minus and "org-1/sentiment-multilingual" not in minus


def test_facets_count_correctly_under_filters(catalogue):
    client = APIClient()
    body = _search(client, task="translation", license="mit", page_size=5)
    expected = Model.objects.filter(visibility="public", task="translation", license="mit")
    assert body["count"] == expected.count()
    frameworks = {f["value"]: f["count"] for f in body["facets"]["framework"]}
    for framework, count in frameworks.items():
        assert count == expected.filter(framework=framework).count()
    assert sum(frameworks.values()) == body["count"]
    tags = {f["value"]: f["count"] for f in body["facets"]["tags"]}
    for tag, count in tags.items():
        assert count == expected.filter(tags__contains=[tag]).count()
    assert {f["value"] for f in body["facets"]["task"]} == {"translation"}


def test_sorts_and_pages(catalogue):
    client = APIClient()
    popular = _search(client, sort="popular", page_size=10)["results"]
    calls = [Model.objects.get(owner__slug=r["owner"], slug=r["name"]).calls_30d for r in popular]
    assert calls == sorted(calls, reverse=True)
    first, second = _search(client, page=1, page_size=7), _search(client, page=2, page_size=7)
    assert not set(_names(first)) & set(_names(second)) and first["next"] == 2


def test_a_private_model_is_invisible_to_others_in_every_path(catalogue):
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(UserFactory())[1]}")
    for client in (APIClient(), stranger):
        body = _search(client, search="secret sauce confidential")
        assert "org-2/secret-sauce" not in _names(body)
        everything = _search(client, page_size=100, search="product reviews")
        assert all(f["value"] != "proprietary" for f in everything["facets"]["license"])
        assert all(f["value"] != "confidential" for f in everything["facets"]["tags"])
        assert _search(client, license="proprietary")["count"] == 0
        suggestions = client.get("/v1/models/suggest", {"q": "secr"}).json()["suggestions"]
        assert all(s["name"] != "secret-sauce" for s in suggestions)
    member = UserFactory()
    Membership.objects.create(team=catalogue[2], user=member, role="member")
    mine = APIClient()
    mine.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(member)[1]}")
    assert "org-2/secret-sauce" in _names(_search(mine, search="secret sauce"))
    assert any(
        s["name"] == "secret-sauce"
        for s in mine.get("/v1/models/suggest", {"q": "secr"}).json()["suggestions"]
    )


def test_suggestions_complete_names(catalogue):
    names = [
        s["name"]
        for s in APIClient().get("/v1/models/suggest", {"q": "senti"}).json()["suggestions"]
    ]
    assert names[:2] == ["sentiment", "sentiment-multilingual"] or set(names[:2]) == {
        "sentiment",
        "sentiment-multilingual",
    }


@pytest.mark.parametrize(
    "bad", [{"sort": "best"}, {"page": "0"}, {"page_size": "1000"}, {"search": "x" * 201}]
)
def test_bad_parameters_are_400s(catalogue, bad):
    assert APIClient().get("/v1/models", bad).status_code == 400


@pytest.mark.parametrize(
    "hostile",
    ["'; DROP TABLE catalog_model; --", "a & b | !c", "(((", "sentiment:*", "\\", "%_%", "\x00"],
)
def test_hostile_queries_are_just_text(catalogue, hostile):
    response = APIClient().get("/v1/models", {"search": hostile})
    assert response.status_code in (200, 400)
    assert Model.objects.count() == 403


def test_popularity_counts_the_last_30_days_of_calls(db):
    from datetime import timedelta

    from django.utils import timezone

    from catalog.services import popularity_refresh
    from gateway.models import Invocation
    from tests.catalog.factories import BuildFactory

    build = BuildFactory()
    team = TeamFactory()
    for age_days in (1, 2, 29, 31, 400):
        Invocation.objects.create(
            model=build.model,
            build=build,
            version_label="1.0.0",
            caller_team=team,
            backend="local",
            timeout_seconds=10,
            input_content_type="json",
            created_at=timezone.now() - timedelta(days=age_days),
        )
    popularity_refresh()
    build.model.refresh_from_db()
    assert build.model.calls_30d == 3


def test_the_explore_page_searches_with_facets(catalogue, client):
    page = client.get("/explore/", {"q": "sentiment"})
    assert page.status_code == 200
    assert page.context["models"][0].slug == "sentiment"
    assert b"Framework" in page.content and b"secret-sauce" not in page.content
    filtered = client.get("/explore/", {"q": "sentiment", "framework": "onnx"})
    assert [m.slug for m in filtered.context["models"]] == ["sentiment-multilingual"]
    assert client.get("/explore/", {"sort": "nonsense"}).status_code == 200


def test_owner_pages_list_what_the_viewer_may_see(catalogue, client):
    public = client.get("/org-2")
    assert public.status_code == 200
    names = {m.slug for m in public.context["models"]}
    assert "secret-sauce" not in names and public.context["count"] == len(
        Model.objects.filter(owner__slug="org-2", visibility="public")
    )
    member = UserFactory()
    Membership.objects.create(team=catalogue[2], user=member, role="member")
    client.force_login(member)
    assert client.get("/org-2").context["count"] == public.context["count"] + 1
    assert client.get("/no-such-owner").status_code == 404


@POSTGRESQL_ONLY
def test_a_page_of_results_costs_a_fixed_number_of_queries(
    catalogue, django_assert_max_num_queries
):
    from tests.catalog.factories import VersionFactory

    for model in Model.objects.filter(visibility="public")[:30]:
        VersionFactory(model=model, number="1.0.0")
        VersionFactory(model=model, number="1.2.0")
    client = APIClient()
    with django_assert_max_num_queries(8):
        body = _search(client, page_size=30, sort="popular")
    with_versions = [r for r in body["results"] if r["latest_version"]]
    assert with_versions and all(r["latest_version"] == "1.2.0" for r in with_versions)
