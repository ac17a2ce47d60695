"""Semantic search: one sentence embedding per model, nearest neighbours of a query's
embedding among the models the principal may see, and their fusion with the text ranking.

Storage. `catalog.models.ModelEmbedding` holds one unit vector (`real[]`, 384 floats of
all-MiniLM-L6-v2, catalog/search/encoder.py) per model, made from the name, title, tagline,
tags, task and README that the latest published version copied onto the Model row.

Where it is computed. Never in a request: a save that changes that text marks the vector
stale (the outbox, signals.py) and queues `tasks.embed_model` after commit; publishing a
version saves the row, so it is embedded then. `tasks.embed_stale_models` (beat) embeds what
is stale or missing — models created in bulk, or whose task was lost — and
`rebuild_embeddings` (manage.py search_embeddings) does the whole catalogue. A failure of
the encoder is logged and leaves the model stale; publishing never waits for it. Only the
query's own few words are encoded in the request (a few milliseconds, cached).

The query. With the pgvector extension (the embedded PostgreSQL ships it; migration 0007
creates it where it is available), the vector's cast to `vector(384)` has an HNSW index and
`semantic_candidates` is an index scan ordered by cosine distance, iterating past rows the
visibility filter drops. Without it, the same query computes exact cosines over at most
EXACT_SCAN_LIMIT of the most called visible models. Either way the visibility and the
query's filters are in the statement (a join with `models_visible_to(principal)`, narrowed
by ModelFilter), never applied afterwards.

Fusion. `hybrid_ids` merges the text engine's top FUSION_WINDOW by reciprocal rank fusion
with the semantic top FUSION_WINDOW; everything past them follows in text order. No
embeddings, no encoder, no similar model, SEARCH_SEMANTIC off: it answers None and the
engine pages its text ranking as before."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import DatabaseError, connection, transaction
from django.db.models import F, FloatField, Func, Q, Subquery, Value
from django.db.models.functions import Cast
from django.utils import timezone
from pgvector.django import CosineDistance, VectorField

from catalog.models import Model, ModelEmbedding

from . import encoder as encoding

logger = logging.getLogger(__name__)

# How many nearest neighbours a search asks for, and how many text results are fused.
FUSION_WINDOW = 100
# Cosine similarity below which a neighbour is not a match: unrelated texts score 0.0 to 0.25
# with this model, paraphrases of a task 0.5 to 0.8.
MIN_SIMILARITY = 0.3
# Reciprocal rank fusion: score = Σ weight / (RRF_K + rank). 60 is the constant of the
# original paper (Cormack et al., 2009) and of Elasticsearch's `rrf` retriever.
RRF_K = 60
TEXT_WEIGHT = 1.0
SEMANTIC_WEIGHT = 0.5
# Without pgvector: exact cosines over at most this many visible models (the most called).
EXACT_SCAN_LIMIT = 2000
# Characters of the README that reach the encoder; it reads 256 tokens anyway.
README_CHARACTERS = 2000
EMBED_BATCH_SIZE = 64
STALE_MAX_PER_RUN = 2000
INDEX_NAME = "model_embedding_hnsw"

# Websearch syntax that narrows: a quoted phrase, -word.
_RESTRICTING = re.compile(r'"|(^|\s)-\w')
_MARKUP = re.compile(r"[#*_`>\[\]()|~]+|<[^>]+>")
_SPACE = re.compile(r"\s+")

# Model fields the embedded text is made of: a save touching none of them keeps the vector.
EMBEDDED_FIELDS = frozenset({"slug", "title", "tagline", "tags", "task", "readme"})


# -- the text and its vector --------------------------------------------------------------------


def embedding_text(model) -> str:
    """What is embedded for a model: the most telling text first, the README last (the
    encoder cuts at 256 tokens)."""
    readme = _SPACE.sub(" ", _MARKUP.sub(" ", (model.readme or "")[:README_CHARACTERS])).strip()
    parts = [
        model.slug.replace("-", " ").replace("_", " "),
        model.title,
        model.tagline,
        ", ".join(model.tags or []),
        (model.task or "").replace("-", " "),
        readme,
    ]
    return ". ".join(p.strip() for p in parts if p and p.strip())


def text_hash(text: str, encoder_name: str = encoding.MODEL_NAME) -> str:
    return hashlib.blake2b(f"{encoder_name}\n{text}".encode(), digest_size=16).hexdigest()


_failure_lock = threading.Lock()
_failure: list[str] = []


def encoder_or_none():
    """The process's encoder, or None (logged once) when it cannot be loaded: search is then
    text-only and models stay stale until it can."""
    if _failure:
        return None
    try:
        return encoding.encoder()
    except (encoding.EncoderUnavailable, ImportError, OSError, ValueError) as exc:
        with _failure_lock:
            if not _failure:
                _failure.append(str(exc))
                logger.error("semantic search is off: the sentence encoder did not load: %s", exc)
        return None


@functools.lru_cache(maxsize=1024)
def _query_vector(text: str) -> tuple[float, ...] | None:
    found = encoder_or_none()
    if found is None:
        return None
    return tuple(float(x) for x in found.encode([text])[0])


# Queries being encoded in the background (`prefetch_query_vector`), by normalised text.
_encoding_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="query-vector")
_in_flight: dict[str, Future] = {}
_in_flight_lock = threading.Lock()


def _normalised(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def prefetch_query_vector(text: str) -> None:
    """Start encoding a query in a background thread, so the encoding overlaps the text
    search's statements (the request thread mostly waits on PostgreSQL meanwhile);
    `query_vector` then waits for it instead of encoding again."""
    key = _normalised(text)
    if not key or not settings.SEARCH_SEMANTIC:
        return
    with _in_flight_lock:
        if key in _in_flight:
            return
        future = _encoding_pool.submit(_query_vector, key)
        _in_flight[key] = future
    # Once done, the result is in _query_vector's cache.
    future.add_done_callback(lambda _done, key=key: _in_flight.pop(key, None))


def query_vector(text: str) -> list[float] | None:
    """The unit vector of a query (cached per process: queries repeat)."""
    text = _normalised(text)
    if not text:
        return None
    pending = _in_flight.get(text)
    vector = pending.result() if pending is not None else _query_vector(text)
    return list(vector) if vector is not None else None


# -- writing vectors ----------------------------------------------------------------------------


def mark_stale(model_id) -> None:
    """In the transaction of a write that changed the text: the vector is to be made again."""
    ModelEmbedding.objects.filter(model_id=model_id, stale=False).update(stale=True)


def embed_models(model_ids: Iterable) -> int:
    """Encode the models whose text changed since their vector was made (or that have
    none), in one batch; a model deleted meanwhile is skipped. Returns how many vectors were
    written. Raises EncoderUnavailable when the encoder cannot load."""
    ids = list(model_ids)
    if not ids:
        return 0
    found = encoding.encoder()
    current = {
        e.model_id: e
        for e in ModelEmbedding.objects.filter(model_id__in=ids).only(
            "model_id", "text_hash", "stale"
        )
    }
    todo, texts = [], []
    for model in Model.objects.filter(pk__in=ids).only(*EMBEDDED_FIELDS):
        text = embedding_text(model)
        digest = text_hash(text, found.name)
        known = current.get(model.pk)
        if known is not None and known.text_hash == digest:
            if known.stale:
                ModelEmbedding.objects.filter(pk=model.pk).update(stale=False)
            continue
        todo.append((model.pk, digest))
        texts.append(text)
    if not todo:
        return 0
    vectors = found.encode(texts)
    now = timezone.now()
    rows = [
        ModelEmbedding(
            model_id=model_id,
            encoder=found.name,
            vector=[float(x) for x in vector],
            text_hash=digest,
            stale=False,
            updated_at=now,
        )
        for (model_id, digest), vector in zip(todo, vectors, strict=True)
    ]
    # A model deleted since it was read: its row would break the foreign key.
    alive = set(
        Model.objects.filter(pk__in=[r.model_id for r in rows]).values_list("pk", flat=True)
    )
    ModelEmbedding.objects.bulk_create(
        [r for r in rows if r.model_id in alive],
        update_conflicts=True,
        unique_fields=["model"],
        update_fields=["encoder", "vector", "text_hash", "stale", "updated_at"],
    )
    return len(alive)


def needing_embedding():
    """Models with no vector, a stale one, or one made by another encoder."""
    return Model.objects.filter(
        Q(embedding__isnull=True)
        | Q(embedding__stale=True)
        | ~Q(embedding__encoder=encoding.MODEL_NAME)
    )


def embed_stale(batch_size: int = EMBED_BATCH_SIZE, max_models: int = STALE_MAX_PER_RUN) -> int:
    """The healing pass: embed models needing it, a batch at a time, at most max_models."""
    written = seen = 0
    last = None
    while seen < max_models:
        batch = needing_embedding().order_by("pk")
        if last is not None:
            batch = batch.filter(pk__gt=last)
        ids = list(batch.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        written += embed_models(ids)
        seen += len(ids)
        last = ids[-1]
    return written


def rebuild_embeddings(
    batch_size: int = EMBED_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """The bulk-rebuild step: every model's vector checked against its text and made again
    where it changed or is missing, in batches (a catalogue loaded with bulk_create or
    QuerySet.update sends no signal); then the HNSW index is made if it can be. Calls
    progress(done, total) after each batch. Returns how many vectors were written."""
    total = Model.objects.count()
    done = written = 0
    last = None
    while True:
        batch = Model.objects.order_by("pk")
        if last is not None:
            batch = batch.filter(pk__gt=last)
        ids = list(batch.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        written += embed_models(ids)
        done += len(ids)
        last = ids[-1]
        if progress is not None:
            progress(done, total)
    ModelEmbedding.objects.exclude(model__in=Model.objects.all()).delete()
    ensure_vector_index()
    return written


# -- pgvector -------------------------------------------------------------------------------------


_pgvector_by_database: dict[str, bool] = {}


def pgvector_installed() -> bool:
    """True when the database has the pgvector extension (remembered per process)."""
    name = connection.settings_dict["NAME"]
    if name not in _pgvector_by_database:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            _pgvector_by_database[name] = cursor.fetchone() is not None
    return _pgvector_by_database[name]


def ensure_vector_index(using=None) -> str:
    """Create the pgvector extension where the server has it and the HNSW index on the
    vectors; without it do nothing (searches then compute exact cosines). Safe to repeat.
    Returns what is the case now: "hnsw", "unavailable" or "not permitted"."""
    target = connection if using is None else using
    _pgvector_by_database.pop(target.settings_dict["NAME"], None)
    with target.cursor() as cursor:
        cursor.execute(
            "SELECT installed_version IS NOT NULL FROM pg_available_extensions "
            "WHERE name = 'vector'"
        )
        row = cursor.fetchone()
        if row is None:
            return "unavailable"
        if not row[0]:
            try:
                with transaction.atomic(using=target.alias):
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except DatabaseError as exc:
                logger.warning("pgvector is available but could not be created: %s", exc)
                return "not permitted"
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [INDEX_NAME])
        if cursor.fetchone() is None:
            cursor.execute(
                f"CREATE INDEX {INDEX_NAME} ON catalog_modelembedding "
                f"USING hnsw ((vector::vector({encoding.DIMENSIONS})) vector_cosine_ops)"
            )
    return "hnsw"


# -- nearest neighbours ---------------------------------------------------------------------------


class _DotProduct(Func):
    """Σ aᵢ·bᵢ of two float arrays: the cosine of two unit vectors, without pgvector."""

    template = "(SELECT sum(a * b) FROM unnest(%(expressions)s) AS t(a, b))"
    output_field = FloatField()


def semantic_candidates(models, text: str, k: int = FUSION_WINDOW) -> list[tuple[object, float]]:
    """The k models of `models` (a Model queryset already narrowed to what the principal may
    see: `models_visible_to(principal)`, plus any filters) whose vectors are closest to the
    text's, as (model id, cosine similarity), most similar first, at least MIN_SIMILARITY.
    Empty when semantic search is off, the encoder is missing or nothing is embedded."""
    if not settings.SEARCH_SEMANTIC or k <= 0:
        return []
    vector = query_vector(text)
    if vector is None:
        return []
    if pgvector_installed():
        # The HNSW scan goes on past neighbours the visibility filter drops (pgvector 0.8),
        # so a private model near the query never leaves a visitor with fewer results.
        hnsw = {"hnsw.ef_search": str(max(40, k)), "hnsw.iterative_scan": "relaxed_order"}
        with _index_scans(hnsw):
            rows = _nearest_with_pgvector(models, vector, k)
    else:
        with _index_scans({}):
            rows = _nearest_exactly(models, vector, k)
    return [(pk, similarity) for pk, similarity in rows if similarity >= MIN_SIMILARITY]


@contextmanager
def _index_scans(settings: dict[str, str]):
    """Index scans allowed for the nearest-neighbour statement, whatever the text search
    around it set (it allows only bitmap scans, engines/postgres.py `_search_settings`): the
    HNSW scan is an index scan, and each neighbour is checked against the visible models
    by their primary key. Without it, the statement read every visible model and sorted
    them all by distance (0.4 s at 100,000 models). `settings` are set in the same round
    trip, for the statement's transaction."""
    names, values = ["enable_indexscan", *settings], ["on", *settings.values()]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(name, true), set_config(name, value, true) "
            "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS s(name, value, i) "
            "ORDER BY i",
            [names, values],
        )
        before = cursor.fetchone()[0]
        # On an error the savepoint's rollback puts the settings back.
        yield
        if before != "on":
            cursor.execute("SELECT set_config('enable_indexscan', %s, true)", [before])


def nearest_query(models, vector: list[float], k: int):
    """The pgvector statement: (model id, cosine distance) of the k nearest, by the HNSW
    index on the vectors' cast to vector(384) (the ORDER BY is that same expression), the
    visible models a semi-join (`model_id IN (...)`) that each neighbour is checked against
    as the index hands it over. No distance bound in the WHERE clause: the scan would go on
    looking for rows that pass it; `semantic_candidates` drops the far ones afterwards."""
    distance = CosineDistance(Cast("vector", VectorField(dimensions=encoding.DIMENSIONS)), vector)
    return (
        ModelEmbedding.objects.filter(
            encoder=encoding.MODEL_NAME, model_id__in=models.order_by().values("pk")
        )
        .annotate(distance=distance)
        .order_by("distance")
        .values_list("model_id", "distance")[:k]
    )


def _nearest_with_pgvector(models, vector: list[float], k: int):
    rows = list(nearest_query(models, vector, k))
    # relaxed_order may return neighbours slightly out of order.
    return sorted(((pk, 1.0 - distance) for pk, distance in rows), key=lambda r: -r[1])


def _nearest_exactly(models, vector: list[float], k: int):
    embedded = models.filter(embedding__isnull=False, embedding__encoder=encoding.MODEL_NAME)
    scanned = embedded.order_by("-calls_30d", "pk").values("pk")[:EXACT_SCAN_LIMIT]
    similarity = _DotProduct(F("vector"), Value(vector, output_field=ArrayField(FloatField())))
    rows = (
        ModelEmbedding.objects.filter(model_id__in=Subquery(scanned))
        .annotate(similarity=similarity)
        .order_by("-similarity", "model_id")
        .values_list("model_id", "similarity")[:k]
    )
    return [(pk, float(similarity)) for pk, similarity in rows]


# -- fusion ---------------------------------------------------------------------------------------


def hybrid_applies(query) -> bool:
    """A relevance search with text that excludes nothing: "a -b" and a quoted phrase ask
    for exactly those words, and neighbours by meaning would bring back what the query
    excluded. An `or` widens, as meaning does ("happy or angry" stays hybrid)."""
    return bool(
        settings.SEARCH_SEMANTIC
        and query.text
        and query.sort == "relevance"
        and not _RESTRICTING.search(query.text)
    )


def reciprocal_rank_fusion(rankings: list[tuple[list, float]], k: int = RRF_K) -> list:
    """Ids of several rankings ordered by Σ weight / (k + rank), rank from 1. Ties keep the
    order of the first ranking that has the id, then the order of first appearance."""
    scores: dict = {}
    first_seen: dict = {}
    for ids, weight in rankings:
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            first_seen.setdefault(item, len(first_seen))
    return sorted(scores, key=lambda item: (-scores[item], first_seen[item]))


def hybrid_ids(text_page, matching, visible, query, start: int, size: int, count: int):
    """One page of a relevance search as model ids, the text ranking fused with semantic
    neighbours, and the count including the neighbours that match no word; or None when
    there is nothing to fuse (the caller then pages its text ranking as it would have).

    `text_page(begin, n)`: the text ranking's ids from position `begin`, at most n of them;
    `matching`: the text engine's matches; `visible`: what the principal may see, narrowed
    by the query's filters, before the text condition."""
    if not hybrid_applies(query):
        return None
    try:
        semantic = semantic_candidates(visible, query.text, FUSION_WINDOW)
    except DatabaseError:
        logger.warning("semantic candidates failed; answering from text only", exc_info=True)
        return None
    if not semantic:
        return None
    text_ids = text_page(0, FUSION_WINDOW)
    semantic_ids = [pk for pk, _similarity in semantic]
    fused = reciprocal_rank_fusion([(text_ids, TEXT_WEIGHT), (semantic_ids, SEMANTIC_WEIGHT)])
    if text_ids:
        first_slug = visible.filter(pk=text_ids[0]).values_list("slug", flat=True).first()
        if first_slug == query.text.strip().lower():
            # The model named exactly what was typed stays first, as in the text ranking.
            fused.remove(text_ids[0])
            fused.insert(0, text_ids[0])
    text_set = set(text_ids)
    only_semantic = [pk for pk in semantic_ids if pk not in text_set]
    more_text = len(text_ids) == FUSION_WINDOW
    if only_semantic and more_text:
        # Neighbours past the text window may still match words: already counted.
        matched = set(matching.filter(pk__in=only_semantic).values_list("pk", flat=True))
        only_semantic = [pk for pk in only_semantic if pk not in matched]
    count += len(only_semantic)
    end = start + size
    page_ids = fused[start:end]
    if end > len(fused) and more_text:
        # Later pages continue in text order, past the window, without what was fused.
        after = max(0, start - len(fused))
        need = end - max(start, len(fused))
        fused_set = set(fused)
        later = text_page(FUSION_WINDOW, after + need + len(semantic_ids))
        page_ids += [pk for pk in later if pk not in fused_set][after : after + need]
    return page_ids, count


# -- Elasticsearch --------------------------------------------------------------------------------

# How much a knn hit's score, (1 + cosine) / 2, weighs beside the text query's BM25 score
# (names and titles boosted 10): a close neighbour adds about what a tagline word does.
ELASTICSEARCH_KNN_BOOST = 5.0
ELASTICSEARCH_NUM_CANDIDATES = 200


def _body_filters(body: dict) -> list[dict]:
    query = body["query"]
    if "function_score" in query:
        query = query["function_score"]["query"]
    return query["bool"]["filter"]


def elasticsearch_hybrid_body(body: dict, query, vector: list[float] | None) -> dict:
    """A search body (queries.elasticsearch_search_body) with a `knn` clause beside its
    query: Elasticsearch adds the two scores, and a model found by meaning alone is a hit.
    The knn clause carries the body's own filters (visibility and the query's filters): a
    top-level knn is not narrowed by the query's filter, so without them a private model
    near the query would be a hit. Unchanged when there is nothing to add."""
    if vector is None or not hybrid_applies(query):
        return body
    return {
        **body,
        "knn": {
            "field": "embedding",
            "query_vector": vector,
            "k": FUSION_WINDOW,
            "num_candidates": ELASTICSEARCH_NUM_CANDIDATES,
            "filter": _body_filters(body),
            "similarity": MIN_SIMILARITY,
            "boost": ELASTICSEARCH_KNN_BOOST,
        },
    }


def elasticsearch_query_vector(query) -> list[float] | None:
    """The query's vector when a hybrid search applies, else None."""
    if not hybrid_applies(query):
        return None
    return query_vector(query.text)


__all__ = [
    "EMBEDDED_FIELDS",
    "embed_models",
    "embed_stale",
    "embedding_text",
    "ensure_vector_index",
    "hybrid_ids",
    "mark_stale",
    "query_vector",
    "rebuild_embeddings",
    "reciprocal_rank_fusion",
    "semantic_candidates",
]
