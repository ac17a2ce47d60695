"""The Elasticsearch engine's requests, read as data: what every body filters on, how the
websearch syntax is translated, sorts, filters, pages and facets; the index mapping and the
documents. No cluster is needed; tests/catalog/search/test_contract.py runs the same
relevance tests against a real one when ELASTICSEARCH_URL is set."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalog.search import documents
from catalog.search.engines.elasticsearch import private_owner_ids
from catalog.search.queries import (
    FACETS,
    FAR_MORE,
    MAX_RESULT_WINDOW,
    TRACK_TOTAL_HITS,
    CatalogQuery,
    corrected_query_from_response,
    elasticsearch_corrections_body,
    elasticsearch_search_body,
    elasticsearch_suggest_body,
    facets_from_aggregations,
    simple_query_string,
    visibility_filter,
)
from marketplace.accounts.models import Membership
from marketplace.accounts.principals import Principal
from tests.catalog.factories import ModelFactory
from tests.factories import TeamFactory, UserFactory, make_key

PUBLIC_ONLY = {"term": {"visibility": "public"}}


def _top_bool(body: dict) -> dict:
    query = body["query"]
    if "function_score" in query:
        query = query["function_score"]["query"]
    return query["bool"]


def _walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _has_key(body, key: str) -> bool:
    return any(isinstance(node, dict) and key in node for node in _walk(body))


# -- visibility, in every body ----------------------------------------------------------------


@pytest.mark.parametrize("owners", [[], [7], [3, 9]], ids=["anonymous", "team-key", "member"])
@pytest.mark.parametrize(
    "query",
    [
        CatalogQuery(),
        CatalogQuery(text="sentiment"),
        CatalogQuery(text="sentimnt clasifier", facets=()),
        CatalogQuery(text="sentiment", sort="popular"),
        CatalogQuery(text='"forty languages" -x', task="translation", tags=("nlp",)),
        CatalogQuery(license="proprietary", sort="recent", facets=("license",)),
    ],
)
def test_the_search_body_filters_hits_counts_and_facets_by_visibility(query, owners):
    body = elasticsearch_search_body(query, owners)
    assert visibility_filter(owners) in _top_bool(body)["filter"]
    # Facets are aggregations of the same query: nothing may aggregate outside it.
    assert "post_filter" not in body and not _has_key(body.get("aggs", {}), "global")
    # Counted exactly only up to a limit, as the PostgreSQL engine counts.
    assert body["track_total_hits"] == TRACK_TOTAL_HITS
    # The spelling suggester's candidates are kept only when a visible model holds them.
    if "suggest" in body:
        phrase = body["suggest"]["corrected"]["phrase"]
        assert phrase["collate"]["prune"] is False
        collate = phrase["collate"]["query"]["source"]["bool"]["filter"]
        assert visibility_filter(owners) in collate


def test_the_visibility_filter_is_public_or_the_principals_owners():
    assert visibility_filter([]) == PUBLIC_ONLY
    assert visibility_filter([9, 3, 9]) == {
        "bool": {
            "should": [PUBLIC_ONLY, {"terms": {"owner_id": [3, 9]}}],
            "minimum_should_match": 1,
        }
    }


@pytest.mark.parametrize("owners", [[], [4, 5]])
def test_suggestions_and_corrections_carry_the_visibility_filter(owners):
    suggest = elasticsearch_suggest_body("secr", owners)
    assert suggest["query"]["bool"]["filter"] == [visibility_filter(owners)]
    corrections = elasticsearch_corrections_body("secrte sauce", owners)
    # The phrase suggester draws candidates from the whole index; each is kept only when
    # its collate query (visibility included) finds a model.
    phrase = corrections["suggest"]["correction"]["phrase"]
    assert phrase["collate"]["prune"] is False
    assert visibility_filter(owners) in phrase["collate"]["query"]["source"]["bool"]["filter"]
    assert corrections["suggest"]["text"] == "secrte sauce"


@pytest.mark.django_db
def test_private_owner_ids_match_models_visible_to():
    team, other = TeamFactory(), TeamFactory()
    member = UserFactory()
    Membership.objects.create(team=team, user=member, role="admin")
    assert private_owner_ids(None) == []
    assert private_owner_ids(Principal(None)) == []
    personal_teams = list(Membership.objects.filter(user=member).values_list("team_id", flat=True))
    assert private_owner_ids(Principal(member)) == sorted(personal_teams)
    assert team.pk in private_owner_ids(Principal(member))
    assert other.pk not in private_owner_ids(Principal(member))
    key, _secret = make_key(member, team=team)
    assert private_owner_ids(Principal(member, key)) == [team.pk]


# -- the text query ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "translated"),
    [
        ("sentiment analysis", "sentiment analysis"),
        ("sentiment -multilingual", "sentiment -multilingual"),
        ('"forty languages"', '"forty languages"'),
        ('-"forty languages" sentiment', '-"forty languages" sentiment'),
        ("positive or negative score", "(positive | negative) score"),
        ("a OR b or c d", "(a | b | c) d"),
        ("or alone or", "alone"),
        ("text-classification", "(text classification)"),
        # Only words reach Elasticsearch: nothing typed is an operator of its own syntax.
        ("'; DROP TABLE catalog_model; --", "DROP TABLE catalog_model"),
        ("a & b | !c", "a b c"),
        ("sentiment:* ~2 +x", "sentiment 2 x"),
        ("(((", ""),
        ("\\", ""),
    ],
)
def test_websearch_syntax_becomes_simple_query_string(text, translated):
    assert simple_query_string(text) == translated


def _text_clauses(body: dict) -> list[dict]:
    (must,) = _top_bool(body)["must"]
    return must["bool"]["should"] if "bool" in must else [must]


@pytest.mark.parametrize("typo", ["sentimnt", "multilingal", "image classifer"])
def test_plain_text_also_matches_prefixes_and_typos(typo):
    body = elasticsearch_search_body(CatalogQuery(text=typo), [])
    kinds = [next(iter(c)) for c in _text_clauses(body)]
    assert kinds == ["bool", "multi_match"]
    terms, prefix = _text_clauses(body)[0]["bool"], _text_clauses(body)[1]["multi_match"]
    assert all(f.split("^")[0].endswith(".prefix") for f in prefix["fields"])
    # One clause per word, each fuzzy as Elasticsearch's AUTO (4+ letters one edit, 8+ two).
    assert len(terms["should"]) == len(typo.split())
    for clause in terms["should"]:
        assert clause["multi_match"]["fuzziness"] == "AUTO:4,8"
        assert clause["multi_match"]["operator"] == "and"
    assert terms["minimum_should_match"] == "2<-1 5<-25%"


def test_a_model_holding_two_of_three_words_matches_and_verbatim_is_not_fuzzy():
    body = elasticsearch_search_body(CatalogQuery(text="adversarial eval harness"), [])
    terms = _text_clauses(body)[0]["bool"]
    assert [c["multi_match"]["query"] for c in terms["should"]] == [
        "adversarial",
        "eval",
        "harness",
    ]
    # "2<-1": up to two words all are required, from three one may be missing.
    assert terms["minimum_should_match"].startswith("2<-1")
    verbatim = elasticsearch_search_body(
        CatalogQuery(text="adversarial eval harness", verbatim=True), []
    )
    assert not _has_key(verbatim, "fuzziness")


def test_a_token_joining_words_is_one_term_of_all_its_words():
    body = elasticsearch_search_body(CatalogQuery(text="ARIMA/GARCH TensorFlow"), [])
    terms = _text_clauses(body)[0]["bool"]["should"]
    assert [c["multi_match"]["query"] for c in terms] == ["arima garch", "tensor flow"]


@pytest.mark.parametrize(
    "text", ['"forty languages"', "sentiment -multilingual", "positive or negative score"]
)
def test_operators_are_taken_literally_without_fuzziness_or_prefixes(text):
    body = elasticsearch_search_body(CatalogQuery(text=text), [])
    (clause,) = _text_clauses(body)
    assert clause["simple_query_string"]["query"] == simple_query_string(text)
    assert clause["simple_query_string"]["default_operator"] == "and"
    assert not _has_key(body, "fuzziness")


def test_text_without_words_matches_nothing():
    body = elasticsearch_search_body(CatalogQuery(text="((("), [])
    assert _top_bool(body)["must"] == [{"match_none": {}}]


def test_weights_mirror_the_tsvector_and_the_exact_name_wins():
    body = elasticsearch_search_body(CatalogQuery(text="Sentiment "), [])
    (term,) = _text_clauses(body)[0]["bool"]["should"]
    fields = term["multi_match"]["fields"]
    weight = {f.split("^")[0]: float(f.split("^")[1]) if "^" in f else 1.0 for f in fields}
    # name > title > tagline > tags > README, as the PostgreSQL ranking.
    assert weight["name"] > weight["title"] > weight["tagline"] > weight["tags.text"]
    assert weight["tags.text"] > weight["task.text"] == weight["framework.text"]
    assert weight["framework.text"] > weight["owner.text"] > weight["readme"]
    (exact,) = _top_bool(body)["should"]
    assert exact["constant_score"]["filter"] == {"term": {"name.keyword": "sentiment"}}
    assert exact["constant_score"]["boost"] >= 100


def test_relevance_blends_popularity_and_recency():
    score = elasticsearch_search_body(CatalogQuery(text="vision"), [])["query"]["function_score"]
    popularity, recency = score["functions"]
    assert popularity["field_value_factor"]["field"] == "calls_30d"
    assert popularity["field_value_factor"]["modifier"] == "log1p"
    assert "updated_at" in recency["gauss"]
    assert score["boost_mode"] == "sum"


# -- sorts, filters, pages, facets --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first_keys"),
    [
        (CatalogQuery(text="x"), ["_score", {"calls_30d": "desc"}]),
        (CatalogQuery(), [{"calls_30d": "desc"}, {"updated_at": "desc"}]),
        (CatalogQuery(text="x", sort="popular"), [{"calls_30d": "desc"}, {"updated_at": "desc"}]),
        (CatalogQuery(text="x", sort="recent"), [{"created_at": "desc"}]),
    ],
)
def test_sorts_like_the_postgresql_engine(query, first_keys):
    sort = elasticsearch_search_body(query, [])["sort"]
    assert sort == [*first_keys, {"owner": "asc"}, {"name.keyword": "asc"}]


def test_only_relevance_with_text_is_scored():
    for query in (CatalogQuery(), CatalogQuery(text="x", sort="popular")):
        assert "function_score" not in elasticsearch_search_body(query, [])["query"]


def test_filters_and_every_tag_must_match():
    query = CatalogQuery(
        task="translation",
        framework="onnx",
        license="mit",
        owner="org-1",
        tags=("nlp", "sentiment"),
    )
    filters = _top_bool(elasticsearch_search_body(query, [2]))["filter"]
    assert filters == [
        visibility_filter([2]),
        {"term": {"task": "translation"}},
        {"term": {"framework": "onnx"}},
        {"term": {"license": "mit"}},
        {"term": {"owner": "org-1"}},
        {"term": {"tags": "nlp"}},
        {"term": {"tags": "sentiment"}},
    ]


def test_pages_and_the_result_window():
    body = elasticsearch_search_body(CatalogQuery(page=3, page_size=7), [])
    assert (body["from"], body["size"]) == (14, 7)
    far = elasticsearch_search_body(CatalogQuery(page=2000, page_size=100), [])
    assert far["from"] + far["size"] <= MAX_RESULT_WINDOW and far["size"] == 0


def test_facet_aggregations_and_their_shape():
    aggs = elasticsearch_search_body(CatalogQuery(), [])["aggs"]
    # Facets count a bounded sample of the best matches (exact whenever the count is).
    assert set(aggs) == {"sample"}
    assert aggs["sample"]["sampler"] == {"shard_size": TRACK_TOTAL_HITS}
    aggs = aggs["sample"]["aggs"]
    assert set(aggs) == set(FACETS)
    assert aggs["tags"]["terms"]["size"] == 30 and aggs["owner"]["terms"]["field"] == "owner"
    only = elasticsearch_search_body(CatalogQuery(facets=("task",)), [])["aggs"]
    assert set(only["sample"]["aggs"]) == {"task"}
    assert "aggs" not in elasticsearch_search_body(CatalogQuery(facets=()), [])
    # The visibility filter is in the query the sampler draws from: no aggregation escapes it.
    body = elasticsearch_search_body(CatalogQuery(text="sentiment"), [3])
    assert visibility_filter([3]) in _top_bool(body)["filter"]
    assert not _has_key(body["aggs"], "global") and not _has_key(body["aggs"]["sample"], "filter")
    # The one filter aggregation narrows the hits (the words as typed, for the spelling
    # correction), never widens them.
    assert set(body["aggs"]) == {"sample", "as_typed"}

    response = {
        "task": {"buckets": [{"key": "b", "doc_count": 2}, {"key": "a", "doc_count": 2}]},
        "tags": {"buckets": [{"key": f"t{i:02}", "doc_count": 40 - i} for i in range(35)]},
    }
    for aggregations in (response, {"sample": {"doc_count": 75, **response}}):
        facets = facets_from_aggregations(aggregations)
        assert facets["task"] == [{"value": "a", "count": 2}, {"value": "b", "count": 2}]
        assert len(facets["tags"]) == 30 and facets["tags"][0] == {"value": "t00", "count": 40}


def test_suggest_completes_names_first_and_tolerates_typos_when_long_enough():
    body = elasticsearch_suggest_body("  Senti ", [], limit=5)
    assert body["size"] == 5
    should = body["query"]["bool"]["should"]
    assert should[0] == {"prefix": {"name.keyword": {"value": "senti", "boost": 3.0}}}
    assert _has_key(body, "fuzziness")
    assert not _has_key(elasticsearch_suggest_body("sen", []), "fuzziness")


# -- mapping and documents ----------------------------------------------------------------------


def _analyzers_used(mapping: dict):
    for node in _walk(mapping):
        if isinstance(node, dict):
            for key in ("analyzer", "search_analyzer"):
                if key in node:
                    yield node[key]


def test_the_mapping_defines_every_analyzer_it_uses():
    analysis = documents.INDEX_SETTINGS["analysis"]
    assert set(_analyzers_used(documents.MAPPINGS)) <= set(analysis["analyzer"])
    for analyzer in analysis["analyzer"].values():
        built_in = {"lowercase", "asciifolding", "flatten_graph"}
        assert set(analyzer["filter"]) <= set(analysis["filter"]) | built_in
        assert set(analyzer.get("char_filter", [])) <= set(analysis["char_filter"])
    assert analysis["filter"]["english_stemmer"] == {"type": "stemmer", "language": "english"}
    assert analysis["filter"]["prefix_edge_ngram"]["type"] == "edge_ngram"
    properties = documents.MAPPINGS["properties"]
    # Prefixes are edge n-grams when indexed, whole words when searched.
    assert properties["name"]["fields"]["prefix"]["analyzer"] == "prefixes"
    assert properties["name"]["fields"]["prefix"]["search_analyzer"] == "words"
    for facet in ("task", "framework", "license", "owner", "tags", "visibility"):
        assert properties[facet]["type"] == "keyword"
    assert documents.MAPPINGS["dynamic"] == "strict"


def test_every_word_is_indexed_with_the_token_kept_on_every_text_field():
    analysis = documents.INDEX_SETTINGS["analysis"]
    parts = analysis["filter"]["word_parts"]
    assert parts["type"] == "word_delimiter_graph" and parts["preserve_original"]
    assert parts["split_on_case_change"] and parts["split_on_numerics"]
    assert analysis["filter"]["word_runs"]["preserve_original"]
    index, query = analysis["analyzer"]["english_text"], analysis["analyzer"]["english_query"]
    assert index["tokenizer"] == query["tokenizer"] == "whitespace"
    assert "flatten_graph" in index["filter"] and "flatten_graph" not in query["filter"]
    assert [f for f in index["filter"] if f != "flatten_graph"] == query["filter"]
    properties = documents.MAPPINGS["properties"]
    for name in ("name", "title", "tagline", "readme"):
        assert properties[name]["analyzer"] == "english_text"
        assert properties[name]["search_analyzer"] == "english_query"
    for name in ("tags", "task", "framework", "owner"):
        assert properties[name]["fields"]["text"]["analyzer"] == "english_text"


def test_the_template_covers_the_indices_the_reindex_makes(settings):
    settings.ELASTICSEARCH_INDEX_PREFIX = "Shop"
    assert documents.alias_name() == "shop-models"
    name = documents.new_index_name(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC))
    assert name == "shop-models-20260102030405000678"
    template = documents.index_template()
    assert template["index_patterns"] == ["shop-models-*"]
    assert template["template"]["mappings"] is documents.MAPPINGS


@pytest.mark.django_db
def test_a_document_holds_what_the_trigger_indexes():
    model = ModelFactory(
        slug="image_net-v2",
        title="ImageNet classifier",
        tagline="Labels for photos",
        tags=["vision", "cnn"],
        task="image-classification",
        framework="",
        license="mit",
        readme="x" * (documents.README_LIMIT + 10),
        visibility="private",
        calls_30d=0,
    )
    document = documents.model_document(model)
    assert set(document) == set(documents.MAPPINGS["properties"])
    assert document["name"] == "image_net-v2" and document["owner"] == model.owner.slug
    assert document["owner_id"] == model.owner_id and document["visibility"] == "private"
    assert document["tags"] == ["vision", "cnn"] and document["task"] == "image-classification"
    assert document["framework"] is None  # no empty facet value
    assert len(document["readme"]) == documents.README_LIMIT
    assert document["created_at"] == model.created_at.isoformat()
    assert document["spell"].startswith("image net v2 ImageNet classifier Labels for photos")
    assert {"slug", "visibility", "readme", "calls_30d"} <= documents.INDEXED_FIELDS


# -- the answer: counts that stopped at the limit ----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("total", "lower_bound"),
    [({"value": 3, "relation": "eq"}, False), ({"value": 10_000, "relation": "gte"}, True)],
)
def test_a_total_that_stopped_at_track_total_hits_is_a_lower_bound(monkeypatch, total, lower_bound):
    from catalog.search.engines import elasticsearch as engine

    model = ModelFactory(slug="sentiment", visibility="public")
    response = {
        "hits": {"total": total, "hits": [{"_id": str(model.pk)}]},
        "aggregations": {
            "sample": {
                "doc_count": 1,
                "task": {"buckets": [{"key": model.task, "doc_count": 1}]},
            }
        },
    }
    monkeypatch.setattr(engine, "_search", lambda body, what: response)
    found = engine.search(Principal(None), CatalogQuery(text="sentiment", facets=("task",)))
    assert (found.count, found.count_is_lower_bound) == (total["value"], lower_bound)
    assert found.models == [model]
    assert found.facets == {"task": [{"value": model.task, "count": 1}]}


# -- the corrected query, in the same request ----------------------------------------------------


def _response(total: int, as_typed: int, options: list[dict]) -> dict:
    return {
        "hits": {"total": {"value": total, "relation": "eq"}, "hits": []},
        "aggregations": {"as_typed": {"doc_count": as_typed}},
        "suggest": {"corrected": [{"text": "", "offset": 0, "length": 0, "options": options}]},
    }


@pytest.mark.parametrize("owners", [[], [4, 5]], ids=["anonymous", "member"])
def test_a_plain_search_asks_for_its_spelling_correction_with_auto_4_8_per_word(owners):
    body = elasticsearch_search_body(CatalogQuery(text="Sentimnt multilingal TensorFlw"), owners)
    assert body["suggest"]["text"] == "sentimnt multilingal tensor flw"
    phrase = body["suggest"]["corrected"]["phrase"]
    assert phrase["size"] == 1
    # Any number of the words may be corrected, as the PostgreSQL engine corrects each.
    assert phrase["max_errors"] == 4.0
    # AUTO:4,8: words of 4+ letters within one edit, of 8+ within two; never the first
    # letters held fixed.
    rules = {(g["min_word_length"], g["max_edits"]) for g in phrase["direct_generator"]}
    assert rules == {(4, 1), (8, 2)}
    assert all(g["prefix_length"] == 0 for g in phrase["direct_generator"])
    collate = phrase["collate"]["query"]["source"]["bool"]["filter"]
    assert collate[0] == visibility_filter(owners)
    assert collate[1]["simple_query_string"]["default_operator"] == "and"
    # How many hits the words as typed find: every term, nothing fuzzy, over the hits of the
    # query (an aggregation, so inside the visibility filter).
    as_typed = body["aggs"]["as_typed"]["filter"]["bool"]["must"]
    assert [c["multi_match"]["query"] for c in as_typed] == [
        "sentimnt",
        "multilingal",
        "tensor flw",
    ]
    assert not _has_key(body["aggs"]["as_typed"], "fuzziness")
    assert not _has_key(body["aggs"], "global")


@pytest.mark.parametrize(
    "query",
    [
        CatalogQuery(text="sentimnt", verbatim=True),
        CatalogQuery(text='"sentimnt analysis"'),
        CatalogQuery(text="sentimnt -multilingual"),
        CatalogQuery(text="qa nlp"),  # no word long enough for a typo
        CatalogQuery(),
    ],
)
def test_no_correction_is_asked_verbatim_with_operators_or_for_short_words(query):
    body = elasticsearch_search_body(query, [])
    assert "suggest" not in body
    assert "as_typed" not in body.get("aggs", {})


@pytest.mark.parametrize(
    ("text", "total", "as_typed", "options", "corrected"),
    [
        # The words as typed find nothing: the best collated suggestion is the answer.
        (
            "Sentimnt, multilingual",
            7,
            0,
            [{"text": "sentiment multilingual"}],
            "sentiment, multilingual",
        ),
        # They find far fewer than the fuzzy query does.
        ("sentimnt", FAR_MORE * 3, 3, [{"text": "sentiment"}], "sentiment"),
        # Not far fewer: the words stand as typed.
        ("sentimnt", FAR_MORE * 3 - 1, 3, [{"text": "sentiment"}], ""),
        # A suggestion no visible model holds (collate) is never shown.
        ("sentimnt", 7, 0, [{"text": "secretword", "collate_match": False}], ""),
        # The suggestion is the query itself, or there is none, or nothing was found.
        ("sentiment", 7, 0, [{"text": "sentiment"}], ""),
        ("sentimnt", 7, 0, [], ""),
        ("sentimnt", 0, 0, [{"text": "sentiment"}], ""),
        # A word corrected inside a token: the suggestion as the engine cut it.
        ("TensorFlw", 3, 0, [{"text": "tensor flow"}], "tensor flow"),
    ],
)
def test_the_corrected_query_is_read_from_the_response(text, total, as_typed, options, corrected):
    response = _response(total, as_typed, options)
    assert corrected_query_from_response(CatalogQuery(text=text), response) == corrected


def test_a_verbatim_search_never_reports_a_correction():
    response = _response(7, 0, [{"text": "sentiment"}])
    assert (
        corrected_query_from_response(CatalogQuery(text="sentimnt", verbatim=True), response) == ""
    )


@pytest.mark.django_db
def test_the_engine_answers_with_the_corrected_query_and_only_visible_models(monkeypatch):
    from catalog.search.engines import elasticsearch as engine

    public = ModelFactory(slug="sentiment-scorer", visibility="public")
    private = ModelFactory(slug="sentiment-secret", visibility="private")
    response = _response(2, 0, [{"text": "sentiment"}])
    # A stale index may still hold a model since made private: the answer never shows it.
    response["hits"]["hits"] = [{"_id": str(private.pk)}, {"_id": str(public.pk)}]
    sent = []

    def answer(body, what):
        sent.append(body)
        return response

    monkeypatch.setattr(engine, "_search", answer)
    found = engine.search(Principal(None), CatalogQuery(text="sentimnt", facets=()))
    assert found.corrected_query == "sentiment"
    assert found.models == [public]
    # One request: hits, the correction and the count as typed together.
    assert len(sent) == 1 and "suggest" in sent[0] and "as_typed" in sent[0]["aggs"]


@pytest.mark.django_db
def test_corrections_alone_keep_only_collated_suggestions(monkeypatch):
    from catalog.search.engines import elasticsearch as engine

    response = {
        "suggest": {
            "correction": [
                {
                    "options": [
                        {"text": "secret sauce", "collate_match": False},
                        {"text": "sentiment sauce"},
                    ]
                }
            ]
        }
    }
    sent = []
    monkeypatch.setattr(engine, "_search", lambda body, what: sent.append(body) or response)
    assert engine.corrections(Principal(None), "Secrte sauce") == ["sentiment sauce"]
    phrase = sent[0]["suggest"]["correction"]["phrase"]
    assert visibility_filter([]) in phrase["collate"]["query"]["source"]["bool"]["filter"]
