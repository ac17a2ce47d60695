"""The Elasticsearch side of hybrid search, read as data (no cluster here): the knn clause
beside the text query carries the same visibility and filters as the query, appears only
for a relevance search with text and a vector, and documents hold the model's embedding."""

from __future__ import annotations

import pytest

from catalog.models import ModelEmbedding
from catalog.search import documents, embeddings
from catalog.search.queries import CatalogQuery, elasticsearch_search_body
from tests.catalog.factories import ModelFactory

PUBLIC_ONLY = {"term": {"visibility": "public"}}
VECTOR = [0.05] * 384


def _hybrid(query: CatalogQuery, owners) -> dict:
    body = elasticsearch_search_body(query, owners)
    return embeddings.elasticsearch_hybrid_body(body, query, VECTOR)


def _query_filter(body: dict) -> list:
    query = body["query"]
    if "function_score" in query:
        query = query["function_score"]["query"]
    return query["bool"]["filter"]


@pytest.mark.parametrize("owners", [[], [7], [3, 9]], ids=["anonymous", "team-key", "member"])
def test_the_knn_clause_is_filtered_like_the_query(owners):
    query = CatalogQuery(text="find faces in photos", task="vision", tags=("faces",))
    body = _hybrid(query, owners)
    knn = body["knn"]
    assert knn["filter"] == _query_filter(body)
    visibility = knn["filter"][0]
    if owners:
        assert visibility["bool"]["should"] == [
            PUBLIC_ONLY,
            {"terms": {"owner_id": sorted(owners)}},
        ]
    else:
        assert visibility == PUBLIC_ONLY
    assert {"term": {"task": "vision"}} in knn["filter"]
    assert {"term": {"tags": "faces"}} in knn["filter"]


def test_the_knn_clause_asks_for_the_nearest_embeddings_and_keeps_the_text_query():
    query = CatalogQuery(text="turn speech into text")
    plain = elasticsearch_search_body(query, [])
    body = _hybrid(query, [])
    assert body["query"] == plain["query"] and body["sort"] == plain["sort"]
    knn = body["knn"]
    assert knn["field"] == "embedding" and knn["query_vector"] == VECTOR
    assert knn["k"] <= knn["num_candidates"]
    assert knn["similarity"] == embeddings.MIN_SIMILARITY and knn["boost"] > 0


@pytest.mark.parametrize(
    "query",
    [
        CatalogQuery(),
        CatalogQuery(text="faces", sort="popular"),
        CatalogQuery(text="faces", sort="recent"),
        CatalogQuery(text="faces -cats"),
    ],
    ids=["browse", "popular", "recent", "websearch-syntax"],
)
def test_no_knn_without_plain_text_or_for_other_sorts(query):
    body = elasticsearch_search_body(query, [])
    assert embeddings.elasticsearch_hybrid_body(body, query, VECTOR) == body


def test_no_knn_without_a_vector(settings):
    query = CatalogQuery(text="faces")
    body = elasticsearch_search_body(query, [])
    assert embeddings.elasticsearch_hybrid_body(body, query, None) == body
    settings.SEARCH_SEMANTIC = False
    assert embeddings.elasticsearch_query_vector(query) is None


def test_the_mapping_indexes_the_embedding_as_a_dense_vector():
    field = documents.MAPPINGS["properties"]["embedding"]
    assert field == {"type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine"}


@pytest.mark.django_db
def test_a_document_holds_the_embedding_when_there_is_one():
    model = ModelFactory(visibility="public")
    assert documents.model_document(model)["embedding"] is None  # null: no vector
    ModelEmbedding.objects.create(
        model=model, encoder="all-MiniLM-L6-v2", vector=VECTOR, text_hash="x"
    )
    model.refresh_from_db()
    document = documents.model_document(model)
    assert document["embedding"] == pytest.approx(VECTOR)
    ModelEmbedding.objects.filter(pk=model.pk).update(encoder="another-model")
    model.refresh_from_db()
    assert documents.model_document(model)["embedding"] is None
