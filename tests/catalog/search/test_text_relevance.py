"""Issue 16's text relevance on the PostgreSQL engine, end to end through the API: every
word indexed, partial matches, ranking by what matched, typos corrected per word against
the dictionary of words the visitor may see, and the reindex command after a bulk load."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from catalog.models import Model, ModelEmbedding, SearchWord, Visibility
from catalog.search import analysis
from marketplace.accounts.models import Membership
from tests.catalog.factories import ModelFactory
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _model(slug, tagline, *, owner=None, visibility=Visibility.PUBLIC, **fields):
    return ModelFactory(
        slug=slug,
        title=slug.replace("-", " "),
        tagline=tagline,
        visibility=visibility,
        **({"owner": owner} if owner else {}),
        **fields,
    )


def _search(text, client=None, **params):
    answer = (client or APIClient()).get("/v1/models", {"search": text, **params})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    return [m["name"] for m in body["results"]], body


def test_the_query_is_cut_like_the_index():
    assert analysis.parts("ARIMA/GARCH") == ["arima", "garch"]
    assert analysis.parts("TensorFlow") == ["tensor", "flow"]
    assert analysis.parts("HTTPServer") == ["http", "server"]
    assert analysis.parts("gpt2") == ["gpt", "2"]
    assert analysis.parts("fmpcloud.io,") == ["fmpcloud", "io"]
    assert [analysis.required(n) for n in range(1, 9)] == [1, 2, 2, 3, 4, 5, 6, 6]
    assert [analysis.edits_allowed(w) for w in ("abc", "abcd", "abcdefg", "abcdefgh")] == [
        0,
        1,
        1,
        2,
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("garch", "volatility"),
        ("soviet", "archive"),
        ("functions", "toolbox"),
        ("fmpcloud", "market-data"),
        ("flow", "graph-kit"),
        ("mathml", "math-reader"),
        ("ARIMA/GARCH", "volatility"),
    ],
)
def test_every_word_is_found_inside_joined_tokens(text, expected):
    _model("volatility", "ARIMA/GARCH models of returns")
    _model("archive", "Soviet/Russian film posters")
    _model("toolbox", "A few functions/utilities")
    _model("market-data", "Quotes from fmpcloud.io")
    _model("graph-kit", "Graphs for TensorFlow")
    _model("math-reader", "Reads LaTeX/MathML aloud")
    names, _ = _search(text)
    assert names == [expected]


def test_readme_tags_and_task_words_are_indexed():
    _model("plain", "Nothing special", readme="Built on the Zephyr tokenizer", tags=["geo"])
    assert _search("zephyr")[0] == ["plain"]
    assert _search("geo")[0] == ["plain"]


def test_two_of_three_words_are_found_when_none_has_all_three_and_full_matches_first():
    _model("partial", "adversarial robustness harness")
    _model("unrelated", "image tagging")
    assert _search("adversarial eval harness")[0] == ["partial"]
    _model("complete", "adversarial eval harness")
    names, body = _search("adversarial eval harness")
    assert names == ["complete", "partial"] and body["count"] == 2


def test_a_similar_name_does_not_beat_the_words_that_match():
    _model("vlm-eval-harness", "Benchmarks for vision language models")
    _model("redteam", "An adversarial eval harness for chat models")
    assert _search("adversarial eval harness")[0][0] == "redteam"


def test_where_a_word_matched_ranks_name_over_tagline_over_readme():
    _model("in-readme", "Something", readme="uses quokka internally")
    _model("in-tagline", "A quokka counter")
    _model("quokka", "Something else")
    assert _search("quokka")[0] == ["quokka", "in-tagline", "in-readme"]


def test_rarer_words_count_more():
    for i in range(6):
        _model(f"common-{i}", "fast translator")
    _model("rare", "fast zygote detector")
    _model("both", "translator of zygote words")
    # "both" holds the rare word and the common one; "rare" only the rare one.
    assert _search("translator zygote")[0][0] == "both"
    names, _ = _search("fast zygote")
    assert names[0] == "rare"


def test_popularity_only_breaks_ties():
    _model("quiet", "weather radar nowcasting")
    _model("busy", "weather radar", calls_30d=1_000_000)
    # busy misses a word: a million calls do not make up for it.
    assert _search("weather radar nowcasting")[0][0] == "quiet"
    _model("busy-twin", "weather radar nowcasting", calls_30d=1000)
    assert _search("weather radar nowcasting")[0][:2] == ["busy-twin", "quiet"]


def test_a_misspelt_word_is_corrected_and_the_answer_says_so():
    _model("sentiment", "Sentiment of product reviews")
    _model("other", "Translation of reviews")
    names, body = _search("sentimnt reviews")
    assert names == ["sentiment"]
    assert body["corrected_query"] == "sentiment reviews"
    names, body = _search("sentimnt reviews", verbatim=1)
    assert body["corrected_query"] is None and "sentiment" not in names
    # Words as typed that match are never corrected.
    assert _search("sentiment reviews")[1]["corrected_query"] is None


def test_typos_follow_fuzziness_auto():
    _model("classifier", "An image classifier of birds")
    assert _search("classifer birds")[0] == ["classifier"]  # 1 edit, 10 letters
    assert _search("clasifer birds")[0] == ["classifier"]  # 2 edits, 8+ letters
    assert _search("birsd classifier")[0] == ["classifier"]  # a swap is one edit
    _model("bert", "A bert encoder")
    # 3 letters: no edit allowed.
    assert _search("brt")[1]["corrected_query"] is None


def test_known_words_that_match_nothing_together_are_corrected():
    _model("odoo-very-high", "Adds extra options 'High' and 'Very High'")
    _model("etra", "Etra is a word too")
    names, body = _search("etra options")
    assert names[0] == "odoo-very-high" and body["corrected_query"] == "extra options"


def test_a_correction_never_reveals_a_word_of_a_model_the_visitor_cannot_see():
    owners = TeamFactory()
    _model("zeppelin", "Airship telemetry", owner=owners, visibility=Visibility.PRIVATE)
    _model("blimp", "Airship photos")
    names, body = _search("zepelin airship photos")
    assert "zeppelin" not in str(body).lower()
    assert names == ["blimp"] and body["corrected_query"] is None
    assert _search("zepelin")[1]["corrected_query"] is None
    assert SearchWord.objects.filter(word="zeppelin", scope=owners.pk).exists()
    assert not SearchWord.objects.filter(word="zeppelin", scope=SearchWord.PUBLIC).exists()
    member = UserFactory()
    Membership.objects.create(team=owners, user=member, role="member")
    client = APIClient()
    client.force_authenticate(member)
    names, body = _search("zepelin telemetry", client)
    assert names == ["zeppelin"] and body["corrected_query"] == "zeppelin telemetry"


def test_the_dictionary_follows_edits_visibility_and_deletes():
    model = _model("kite", "A kestrel spotter", visibility=Visibility.PRIVATE)
    scope = model.owner_id

    def count(word, where):
        row = SearchWord.objects.filter(word=word, scope=where).first()
        return row.model_count if row else 0

    assert count("kestrel", scope) == 1 and count("kestrel", SearchWord.PUBLIC) == 0
    model.visibility = Visibility.PUBLIC
    model.save()
    assert count("kestrel", scope) == 0 and count("kestrel", SearchWord.PUBLIC) == 1
    model.tagline = "A falcon spotter"
    model.save()
    assert count("kestrel", SearchWord.PUBLIC) == 0 and count("falcon", SearchWord.PUBLIC) == 1
    model.delete()
    assert count("falcon", SearchWord.PUBLIC) == 0


def test_a_catalogue_loaded_in_bulk_is_searchable_the_same_after_the_reindex():
    owner = TeamFactory()
    Model.objects.bulk_create(
        Model(owner=owner, slug=f"bulk-{i}", title=f"b {i}", tagline=line, visibility="public")
        for i, line in enumerate(["Otter sonar decoder", "Walrus call classifier"])
    )
    # As a restore with the triggers off would leave them: no vectors, no dictionary.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE catalog_model SET search_vector = NULL")
        cursor.execute("DELETE FROM catalog_search_word")
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert _search("otter")[0] == []
    out = io.StringIO()
    call_command("search_reindex", stdout=out)
    assert "vectors" in out.getvalue() and "dictionary" in out.getvalue()
    # The same command makes what meaning needs: an embedding of each model's text.
    assert "2 embeddings written" in out.getvalue()
    embedded = ModelEmbedding.objects.filter(model__slug__startswith="bulk-", stale=False)
    assert embedded.count() == 2
    assert _search("otter sonar")[0] == ["bulk-0"]
    names, body = _search("walrsu call")
    assert names == ["bulk-1"] and body["corrected_query"] == "walrus call"
