"""What the Elasticsearch engine indexes: one document per model, built from the same fields
the PostgreSQL trigger reads (migration 0004), and the index template that says how each
field is analysed.

Searches always go through an alias (`alias_name()`); each reindex builds a new concrete
index (`new_index_name()`) that the alias is then switched to in one atomic step."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from . import encoder

# The trigger indexes at most this much of a README; so does Elasticsearch.
README_LIMIT = 200_000
# Composable templates with overlapping patterns must differ in priority; the built-in ones
# (logs-*-*, metrics-*-*, ...) use 100.
TEMPLATE_PRIORITY = 200
PREFIX_MAX_GRAM = 20

# The Model fields a document is built from: a save that touches none of them leaves the
# document as it is.
INDEXED_FIELDS = frozenset(
    {
        "slug",
        "title",
        "tagline",
        "tags",
        "task",
        "framework",
        "license",
        "owner",
        "owner_id",
        "readme",
        "visibility",
        "calls_30d",
        "created_at",
        "updated_at",
    }
)


def alias_name() -> str:
    """The name every search and every single-document write uses."""
    return f"{settings.ELASTICSEARCH_INDEX_PREFIX}-models".lower()


def template_name() -> str:
    return alias_name()


def index_pattern() -> str:
    return f"{alias_name()}-*"


def new_index_name(now=None) -> str:
    """A concrete index for one reindex, named by when it was made (UTC, to the microsecond)."""
    now = now or timezone.now()
    return f"{alias_name()}-{now:%Y%m%d%H%M%S%f}"


def _words(slug: str) -> str:
    return slug.replace("-", " ").replace("_", " ")


def model_document(model) -> dict:
    """The document of one model (its owner must be loaded or loadable; its embedding too,
    `select_related("owner", "embedding")` in bulk).

    Empty task, framework and license are left out (null) so they never form an empty facet,
    as the PostgreSQL facets exclude them; so is a missing embedding (the model is then
    found by its words only, as on PostgreSQL)."""
    document = {
        "name": model.slug,
        "title": model.title,
        "tagline": model.tagline,
        "tags": list(model.tags or []),
        "task": model.task or None,
        "framework": model.framework or None,
        "license": model.license or None,
        "owner": model.owner.slug,
        "owner_id": model.owner_id,
        "visibility": model.visibility,
        "readme": (model.readme or "")[:README_LIMIT],
        "calls_30d": model.calls_30d,
        "created_at": model.created_at.isoformat(),
        "updated_at": model.updated_at.isoformat(),
        # The vocabulary spelling corrections are drawn from, as the PostgreSQL engine
        # draws it: the words of the name, title, tagline and tags.
        "spell": " ".join([_words(model.slug), model.title, model.tagline, *(model.tags or [])]),
    }
    document["embedding"] = _embedding_of(model)
    return document


def _embedding_of(model) -> list[float] | None:
    try:
        embedding = model.embedding
    except ObjectDoesNotExist:
        return None
    if embedding.encoder != encoder.MODEL_NAME:
        return None
    return [float(x) for x in embedding.vector]


ANALYSIS = {
    "char_filter": {
        # Names are slugs: "sentiment-multilingual", "image_net" are two words each.
        "name_separators": {"type": "pattern_replace", "pattern": "[-_.]+", "replacement": " "},
    },
    "filter": {
        "english_possessive": {"type": "stemmer", "language": "possessive_english"},
        "english_stop": {"type": "stop", "stopwords": "_english_"},
        "english_stemmer": {"type": "stemmer", "language": "english"},
        # Every word is indexed, as migration 0007's catalog_search_split does: the words
        # between separators (LaTeX/MathML: LaTeX, MathML), then the words inside those
        # (La, Te, X, Math, ML; gpt2: gpt, 2), each time keeping the token as written.
        "word_runs": {
            "type": "pattern_capture",
            "preserve_original": True,
            "patterns": ["([\\p{L}\\p{N}]+)"],
        },
        "word_parts": {
            "type": "word_delimiter_graph",
            "preserve_original": True,
            "generate_word_parts": True,
            "generate_number_parts": True,
            "split_on_case_change": True,
            "split_on_numerics": True,
            "catenate_words": False,
            "catenate_numbers": False,
            "stem_english_possessive": True,
        },
        "prefix_edge_ngram": {"type": "edge_ngram", "min_gram": 1, "max_gram": PREFIX_MAX_GRAM},
        "spell_shingle": {"type": "shingle", "min_shingle_size": 2, "max_shingle_size": 3},
    },
    "normalizer": {
        "folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]},
    },
    "analyzer": {
        # Every field the main query searches drops the same English stop words, so a stop
        # word in a query ("for") is dropped on all of them instead of being required in one.
        # Indexing flattens the word-part graph; the query side keeps it.
        "english_text": {
            "type": "custom",
            "tokenizer": "whitespace",
            "filter": [
                "word_runs",
                "word_parts",
                "flatten_graph",
                "lowercase",
                "asciifolding",
                "english_stop",
                "english_stemmer",
            ],
        },
        "english_query": {
            "type": "custom",
            "tokenizer": "whitespace",
            "filter": [
                "word_runs",
                "word_parts",
                "lowercase",
                "asciifolding",
                "english_stop",
                "english_stemmer",
            ],
        },
        # Unstemmed words, for typo (fuzzy) matching and as the search side of the prefixes.
        # It is the standard analyzer plus name separators and accent folding, so what is
        # typed is cut exactly as the indexed words were before their edge n-grams.
        "words": {
            "type": "custom",
            "char_filter": ["name_separators"],
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding"],
        },
        "prefixes": {
            "type": "custom",
            "char_filter": ["name_separators"],
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding", "prefix_edge_ngram"],
        },
        "spell_shingles": {
            "type": "custom",
            "char_filter": ["name_separators"],
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding", "spell_shingle"],
        },
    },
}


def _keyword_with_text() -> dict:
    """An exact value for filters, facets and sorts, with its words searchable."""
    return {"type": "keyword", "fields": {"text": _ENGLISH}}


_ENGLISH = {"type": "text", "analyzer": "english_text", "search_analyzer": "english_query"}

# Subfields of the name and the title: unstemmed words for typos, edge n-grams for prefixes.
_WORDS_AND_PREFIXES = {
    "words": {"type": "text", "analyzer": "words"},
    "prefix": {"type": "text", "analyzer": "prefixes", "search_analyzer": "words"},
}

MAPPINGS = {
    # A field the documents do not declare is a bug; refuse it instead of guessing a type.
    "dynamic": "strict",
    "properties": {
        "name": {
            **_ENGLISH,
            "fields": {
                **_WORDS_AND_PREFIXES,
                "keyword": {"type": "keyword", "normalizer": "folded"},
            },
        },
        "title": {**_ENGLISH, "fields": _WORDS_AND_PREFIXES},
        "tagline": _ENGLISH,
        "tags": _keyword_with_text(),
        "task": _keyword_with_text(),
        "framework": _keyword_with_text(),
        "license": {"type": "keyword"},
        "owner": _keyword_with_text(),
        "owner_id": {"type": "long"},
        "visibility": {"type": "keyword"},
        "readme": _ENGLISH,
        "calls_30d": {"type": "long"},
        "created_at": {"type": "date"},
        "updated_at": {"type": "date"},
        "spell": {
            "type": "text",
            "analyzer": "words",
            "fields": {"shingles": {"type": "text", "analyzer": "spell_shingles"}},
        },
        # The model's sentence embedding (catalog/search/embeddings.py), HNSW-indexed for
        # the knn clause of a hybrid search. Unit vectors: cosine is their dot product.
        "embedding": {
            "type": "dense_vector",
            "dims": encoder.DIMENSIONS,
            "index": True,
            "similarity": "cosine",
        },
    },
}

INDEX_SETTINGS = {
    # One shard: the catalogue is small, and scores and facet counts are then exact.
    "number_of_shards": 1,
    "auto_expand_replicas": "0-1",
    "analysis": ANALYSIS,
}


def index_template() -> dict:
    """Keyword arguments of `indices.put_index_template` for this deployment's indices."""
    return {
        "index_patterns": [index_pattern()],
        "priority": TEMPLATE_PRIORITY,
        "template": {"settings": INDEX_SETTINGS, "mappings": MAPPINGS},
        "meta": {"description": "Modelplace catalogue models (catalog.search.documents)"},
    }
