"""PostgreSQL full-text search: a weighted tsvector kept by a trigger, websearch_to_tsquery
syntax (quotes, -word, or), prefix matching on the last word while typing, trigram word
similarity for typos, visibility in the WHERE clause, facets over the same filtered set."""

from __future__ import annotations

import difflib
import re

from django.contrib.postgres.search import (
    SearchQuery,
    SearchRank,
    TrigramWordSimilarity,
)
from django.db import connection
from django.db.models import Case, F, FloatField, Q, Value, When
from django.db.models.functions import Cast, Ln

from catalog import selectors
from catalog.filters import ModelFilter
from marketplace.core.health import OK, ComponentHealth

from .. import embeddings
from ..queries import CatalogQuery, SearchResult, uses_operators

NAME = "postgresql"

_WORD = re.compile(r"[\w]+", re.UNICODE)


MIN_TYPO_LENGTH = 4
MIN_PREFIX_LENGTH = 3


def _plain(text: str) -> bool:
    """True when the query uses no websearch syntax (quotes, -word, or): only then do
    prefix and typo matching widen it, or they would undo what the syntax asked."""
    return not uses_operators(text)


def _prefix_query(text: str) -> SearchQuery | None:
    if not _plain(text):
        return None
    words = _WORD.findall(text.lower())
    if not words:
        return None
    if len(words[-1]) < MIN_PREFIX_LENGTH:
        # "b:*" would match most of the catalogue; one or two letters match as words.
        return None
    # Every word but the last must match as typed; the last may be the start of a word.
    terms = " & ".join([*words[:-1], f"{words[-1]}:*"])
    return SearchQuery(terms, search_type="raw", config="simple")


def filtered(principal, query: CatalogQuery):
    """The models the principal may see, narrowed by the query's filters."""
    data = {
        "task": query.task,
        "framework": query.framework,
        "license": query.license,
        "owner": query.owner,
        "tags": ",".join(query.tags),
    }
    return ModelFilter(data, queryset=selectors.models_visible_to(principal)).qs


def search(principal, query: CatalogQuery) -> SearchResult:
    models = filtered(principal, query)
    visible = models
    matching = models
    if query.text:
        websearch = SearchQuery(query.text, search_type="websearch", config="english")
        prefix = _prefix_query(query.text)
        combined = websearch | prefix if prefix is not None else websearch
        lowered = query.text.lower()
        # Typo matching compares the words only, as the Elasticsearch engine does:
        # punctuation ("(a+)+$", "sentiment';--") must not make a short word long enough
        # to match by resemblance.
        plain = " ".join(_WORD.findall(lowered))
        condition = Q(search_vector=combined)
        if _plain(query.text) and len(plain) >= MIN_TYPO_LENGTH:
            # `%>` (word similarity above the session threshold) is answered by the trigram
            # GIN index; a similarity() comparison in the WHERE clause would scan every row.
            condition |= Q(search_text__trigram_word_similar=plain)
        models = models.filter(condition)
        matching = models
        models = models.annotate(
            similarity=TrigramWordSimilarity(Value(plain), "search_text"),
        )
        if query.sort == "relevance":
            models = (
                models.annotate(
                    text_rank=SearchRank(F("search_vector"), combined, cover_density=True),
                    exact=Case(
                        When(slug=lowered, then=Value(10.0)),
                        default=Value(0.0),
                        output_field=FloatField(),
                    ),
                    popularity=Ln(Cast(F("calls_30d"), FloatField()) + 1.0),
                )
                .annotate(
                    score=F("exact")
                    + F("text_rank")
                    + F("similarity") * 0.5
                    + F("popularity") * 0.02
                )
                .order_by("-score", "-calls_30d", "owner__slug", "slug")
            )
    if query.sort == "popular" or (query.sort == "relevance" and not query.text):
        models = models.order_by("-calls_30d", "-updated_at", "owner__slug", "slug")
    elif query.sort == "recent":
        models = models.order_by("-created_at", "owner__slug", "slug")
    count, facets = _count_and_facets(matching, query)
    start = (query.page - 1) * query.page_size
    # Meaning: the text ranking fused with the nearest embeddings (None: text only).
    hybrid = embeddings.hybrid_page(models, visible, query, start, count)
    if hybrid is not None:
        return SearchResult(hybrid[0], hybrid[1], facets, "postgresql")
    page = list(models[start : start + query.page_size])
    return SearchResult(page, count, facets, "postgresql")


FACET_COLUMNS = {"task": "task", "framework": "framework", "license": "license"}
MAX_TAG_FACETS = 30


def _count_and_facets(matching, query: CatalogQuery) -> tuple[int, dict[str, list[dict]]]:
    """The number of matches and every facet's counts in one statement: the text condition
    is evaluated once, over a materialised set of the matches, not once per facet."""
    inner, params = (
        matching.order_by()
        .values("id", "task", "framework", "license", "owner_id", "tags")
        .query.sql_with_params()
    )
    parts = ["SELECT 'count', NULL, count(*) FROM matches"]
    for name, column in FACET_COLUMNS.items():
        if name in query.facets:
            parts.append(
                f"SELECT '{name}', {column}, count(*) FROM matches "  # noqa: S608
                f"WHERE {column} <> '' GROUP BY {column}"
            )
    if "owner" in query.facets:
        parts.append(
            "SELECT 'owner', t.slug, count(*) FROM matches JOIN accounts_team t "
            "ON t.id = matches.owner_id GROUP BY t.slug"
        )
    if "tags" in query.facets:
        parts.append(
            "SELECT 'tags', tag, count(*) FROM matches, unnest(matches.tags) AS tag GROUP BY tag"
        )
    statement = f"WITH matches AS MATERIALIZED ({inner}) " + " UNION ALL ".join(parts)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    count = 0
    facets: dict[str, list[dict]] = {name: [] for name in query.facets}
    for name, value, number in rows:
        if name == "count":
            count = number
        else:
            facets[name].append({"value": value, "count": number})
    for name, values in facets.items():
        values.sort(key=lambda f: (-f["count"], f["value"]))
        if name == "tags":
            del values[MAX_TAG_FACETS:]
    return count, facets


def suggest(principal, text: str, limit: int = 8) -> list:
    text = text.strip().lower()
    if not text:
        return []
    models = selectors.models_visible_to(principal).annotate(
        similarity=TrigramWordSimilarity(Value(text), "search_text")
    )
    # Suggestions complete names and titles (not README words): a word of either starting
    # with what was typed, or, for longer input, a name close to it (typos).
    condition = Q(search_text__regex=r"(^|[ _-])" + re.escape(text))
    if len(text) >= MIN_TYPO_LENGTH:
        condition |= Q(search_text__trigram_word_similar=text)
    return list(models.filter(condition).order_by("-similarity", "-calls_30d", "slug")[:limit])


def corrections(principal, text: str, limit: int = 3) -> list[str]:
    """The query with each unknown word replaced by the closest word of the visible models
    that resemble it. Candidate models come from the trigram index (names and titles); the
    replacement words from their name, title, tagline and tags, so a misspelt tagline word
    next to a misspelt name is corrected too."""
    words = _WORD.findall(text.lower())
    if not words or len(words) > 8:
        return []
    visible = selectors.models_visible_to(principal)
    unknown = [
        w
        for w in words
        if len(w) >= 3
        and not visible.filter(search_vector=SearchQuery(w, config="english")).exists()
    ]
    if not unknown:
        return []
    condition = Q()
    for word in unknown:
        condition |= Q(search_text__trigram_word_similar=word)
    for word in set(words) - set(unknown):
        condition |= Q(search_vector=SearchQuery(word, config="english"))
    candidates = (
        visible.filter(condition)
        .order_by("-calls_30d")
        .values_list("slug", "title", "tagline", "tags")[:50]
    )
    vocabulary = sorted(
        {
            w
            for slug, title, tagline, tags in candidates
            for w in _WORD.findall(" ".join([slug, title, tagline, *tags]).lower())
            if len(w) >= 3
        }
    )
    options = [
        difflib.get_close_matches(w, vocabulary, n=limit, cutoff=0.6) or [w]
        if w in unknown
        else [w]
        for w in words
    ]
    suggestions = []
    for i in range(limit):
        candidate = " ".join(choice[min(i, len(choice) - 1)] for choice in options)
        if candidate not in suggestions and candidate != " ".join(words):
            suggestions.append(candidate)
    return suggestions


def health():
    return ComponentHealth(OK, NAME, "PostgreSQL full-text search")
