"""PostgreSQL full-text search.

Every word is indexed (migration 0007 splits `a/b`, `a.b`, `CamelCase`... and keeps the
token too) in a weighted tsvector kept by a trigger: A name, B title, C tagline, D tags,
task, framework, owner and README. A plain query is cut the same way
(`catalog.search.analysis`); each of its terms is a tsquery, and a model matches when it
holds enough of them (`analysis.required`: 2 of 3 words, say), found through the GIN index
as an OR of the possible combinations. Ranking: per matched term, how rare it is (idf from
the word dictionary) times where it matched (name > title > tagline > tags > the rest), with
length normalisation; an exact name wins; popularity only breaks near-ties.

Typos are corrected per word against the dictionary of the catalogue's own words
(`catalog_search_word`, scoped by visibility): a word of 4+ letters that no visible model
holds is replaced by a visible word within Elasticsearch's fuzziness AUTO (pg_trgm finds
candidates, levenshtein measures them), the one that occurs most with the other words; the
search answers for the corrected words when the typed ones all together match nothing, or
far fewer models, and says so (`SearchResult.corrected_query`). Queries with websearch
syntax (quotes, -word, or) are taken as written."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.postgres.search import (
    SearchQuery,
    TrigramWordSimilarity,
)
from django.db import connection, transaction
from django.db.models import BooleanField, Q, Value
from django.db.models.expressions import RawSQL

from catalog import selectors
from catalog.filters import ModelFilter
from catalog.models import SearchWord
from marketplace.core.health import OK, ComponentHealth

from .. import analysis, embeddings
from ..queries import TRACK_TOTAL_HITS, CatalogQuery, SearchResult, uses_operators

NAME = "postgresql"

MIN_TYPO_LENGTH = 4
MIN_PREFIX_LENGTH = 3

# Where a term matched, by tsvector weight: name > title > tagline > tags > the rest (the
# tags share weight D with the README and are told apart by the tags column).
FIELD_WEIGHTS = (("A", 1.5), ("B", 1.35), ("C", 1.2))
TAG_WEIGHT = 1.1
OTHER_WEIGHT = 1.0
# The last term matched only as the start of a word (while typing).
PREFIX_WEIGHT = 0.5
# How much a long text (many distinct words) weakens its matches: score / (1 + k ln(1+n)).
LENGTH_NORMALISATION = 0.05
# Name similarity, only for words that matched: the share of the name's words the query
# holds, times this share of an average matched word's score.
NAME_COVERAGE_WEIGHT = 0.3
EXACT_NAME_BONUS = 10.0
# Times ln(1 + calls over 30 days): at most ~0.14 for a million calls, less than a rare word.
POPULARITY_WEIGHT = 0.01
# Combinations of terms beyond which minimum-should-match is counted per row instead.
MAX_COMBINATIONS = 64

# Bounded work, as a search engine does it. Matches are counted exactly up to COUNT_LIMIT
# (Elasticsearch's `track_total_hits`); beyond, the count is a lower bound and the facets are
# those of the first COUNT_LIMIT matches found (a sample; Elasticsearch's `sampler`). Sorted
# by relevance, only a pool of candidates is scored: the first RANK_WINDOW models that hold
# every term, and the RANK_WINDOW most popular of the counted matches (of every match when
# the count is exact); a deeper page widens the window, up to COUNT_LIMIT results (as
# Elasticsearch's `max_result_window` bounds from + size).
COUNT_LIMIT = TRACK_TOTAL_HITS
RANK_WINDOW = 50

# Spelling: candidates kept per unknown word; "far fewer" is this many times fewer models;
# counts stop at COUNT_CAP (enough to compare, cheap on broad words).
CANDIDATES_PER_WORD = 4
FAR_MORE = 20
COUNT_CAP = 200

_WORD = re.compile(r"[\w]+", re.UNICODE)
_LEXEME = re.compile(r"'((?:[^']|'')*)'(:\*)?")
_SV = '"catalog_model"."search_vector"'


def _plain(text: str) -> bool:
    """True when the query uses no websearch syntax (quotes, -word, or): only then are its
    words matched one by one, partially and with typos forgiven."""
    return not uses_operators(text)


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


def visible_scopes(principal) -> list[int]:
    """The dictionary scopes the principal may read: public, and the teams whose private
    models it may see (the private half of `selectors.models_visible_to`)."""
    return [SearchWord.PUBLIC, *selectors.private_owner_ids(principal)]


# -- terms ------------------------------------------------------------------------------------


@dataclass
class Term:
    """One token of the query: its words, and each word's tsquery (English lexemes; '' for a
    stop word)."""

    words: list[str]
    lexemes: list[str]
    prefix: str = ""  # the last word as the start of a word, while typing

    @property
    def exact(self) -> str:
        found = [lexeme for lexeme in self.lexemes if lexeme]
        return " & ".join(found)

    @property
    def tsquery(self) -> str:
        if self.prefix:
            return f"({self.exact} | {self.prefix})" if self.exact else self.prefix
        return f"({self.exact})"

    def replaced(self, index: int, word: str, lexeme: str) -> Term:
        words, lexemes = list(self.words), list(self.lexemes)
        words[index], lexemes[index] = word, lexeme
        return Term(words, lexemes)


@dataclass
class Vocabulary:
    """What the word dictionary says about a query's words, read once per search: how many
    visible models hold each word (0 for none), and the catalogue's size (for idf)."""

    counts: dict[str, int]
    size: float = 1.0

    def count(self, word: str) -> int:
        return self.counts.get(word, 0)


def _analysed(words: list[str], scopes) -> tuple[list[str], Vocabulary]:
    """Each word's tsquery text in the English configuration, how many visible models hold
    it, and the catalogue's size: one round trip for everything a search needs to know
    about its words before it looks for models."""
    if not words:
        return [], Vocabulary({})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.w, plainto_tsquery('english', t.w)::text,
                   (SELECT coalesce(sum(d.model_count), 0) FROM catalog_search_word AS d
                    WHERE d.word = t.w AND d.scope = ANY(%s) AND d.model_count > 0),
                   (SELECT reltuples FROM pg_class WHERE oid = 'catalog_model'::regclass)
            FROM unnest(%s::text[]) WITH ORDINALITY AS t(w, i) ORDER BY i
            """,
            [scopes, words],
        )
        rows = cursor.fetchall()
    size = max(1.0, float(rows[0][3]))
    return [row[1] for row in rows], Vocabulary({row[0]: int(row[2]) for row in rows}, size)


def _terms(text: str, scopes) -> tuple[list[Term], Vocabulary]:
    cut = analysis.terms(text)
    flat = [word for words in cut for word in words]
    found, vocabulary = _analysed(flat, scopes)
    lexemes = iter(found)
    terms = [Term(words, [next(lexemes) for _ in words]) for words in cut]
    # While typing, the last word may be the start of a longer one (not a stop word: the
    # index holds none, so "very" would only find words that start with it).
    if terms and len(terms[-1].words[-1]) >= MIN_PREFIX_LENGTH and terms[-1].lexemes[-1]:
        terms[-1].prefix = f"'{terms[-1].words[-1]}':*"
    return [term for term in terms if term.exact or term.prefix], vocabulary


def _weighted(tsquery: str, weight: str) -> str:
    """The tsquery restricted to one weight: 'word' -> 'word':A, 'wor':* -> 'wor':*A."""
    return _LEXEME.sub(lambda m: f"'{m.group(1)}':{'*' if m.group(2) else ''}{weight}", tsquery)


def _all_of(terms: list[Term]) -> str:
    return " & ".join(term.tsquery for term in terms)


def _matching(terms: list[Term]) -> tuple[str, list]:
    """The SQL condition of minimum-should-match, with its parameters."""
    need = analysis.required(len(terms))
    if math.comb(len(terms), need) <= MAX_COMBINATIONS:
        either = " | ".join(
            f"({_all_of(list(combination))})" for combination in itertools.combinations(terms, need)
        )
        return f"{_SV} @@ %s::tsquery", [either]
    anyone = " | ".join(term.tsquery for term in terms)
    held = " + ".join(f"({_SV} @@ %s::tsquery)::int" for _ in terms)
    return (
        f"{_SV} @@ %s::tsquery AND {held} >= %s",
        [anyone, *(term.tsquery for term in terms), need],
    )


def _holding(models, tsquery: str):
    # Every RawSQL here is built from constants; what was typed only reaches it as parameters.
    holds = RawSQL(f"{_SV} @@ %s::tsquery", [tsquery], output_field=BooleanField())  # noqa: S611
    return models.filter(holds)


# -- the dictionary ---------------------------------------------------------------------------


def _edits(a: str, b: str) -> int:
    """Edits between two words, a swap of neighbours counting as one (optimal string
    alignment), as Elasticsearch's fuzziness counts them."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def _candidates(
    words: list[str], scopes, vocabulary: Vocabulary
) -> dict[str, list[tuple[str, str]]]:
    """For each typed word, the visible dictionary words within its edits allowed, closest
    and most common first, with their tsquery text. The trigram index finds candidates
    (`%` with the low session threshold of settings.py), levenshtein keeps the near ones
    (one more edit, for swapped letters, which `_edits` then counts as one)."""
    if not words:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT typed, edits, d.word, plainto_tsquery('english', d.word)::text,
                   sum(d.model_count)
            FROM unnest(%s::text[], %s::int[]) AS t(typed, edits)
            JOIN catalog_search_word AS d ON d.word %% t.typed
            WHERE d.scope = ANY(%s) AND d.model_count > 0
              AND length(d.word) BETWEEN length(typed) - edits AND length(typed) + edits
              AND levenshtein_less_equal(d.word, typed, edits + 1) <= edits + 1
            GROUP BY typed, edits, d.word
            """,
            [words, [analysis.edits_allowed(w) for w in words], scopes],
        )
        rows = cursor.fetchall()
    near: dict[str, list[tuple[int, int, str, str]]] = {}
    for typed, edits, word, lexeme, count in rows:
        vocabulary.counts.setdefault(word, int(count))
        distance = _edits(word, typed)
        if lexeme and distance <= edits:
            near.setdefault(typed, []).append((distance, -count, word, lexeme))
    return {
        typed: [(word, lexeme) for _, _, word, lexeme in sorted(found)[:CANDIDATES_PER_WORD]]
        for typed, found in near.items()
    }


def _counts(models, alternatives: list[list[Term]]) -> list[int]:
    """For each alternative (a list of terms), how many models hold every one of its terms,
    counted up to COUNT_CAP: one statement for all of them, each count answered by the GIN
    index with the alternative's tsquery as a parameter of the subquery."""
    if not alternatives:
        return []
    # Built from constants; the tsqueries reach it as the array parameter.
    holds = RawSQL(f"{_SV} @@ alternative.q::tsquery", [], output_field=BooleanField())  # noqa: S611
    inner, params = _sql(models.order_by().filter(holds).values("pk")[:COUNT_CAP])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM ({inner}) AS held) "  # noqa: S608 (the ORM's SQL)
            "FROM unnest(%s::text[]) WITH ORDINALITY AS alternative(q, i) ORDER BY i",
            [*params, [_all_of(terms) if terms else "" for terms in alternatives]],
        )
        return [row[0] for row in cursor.fetchall()]


def _corrected(
    models, terms: list[Term], scopes, vocabulary: Vocabulary, typed_count: int | None = None
) -> list[Term] | None:
    """The terms with misspelt words corrected, when the words as typed all together match
    no model, or far fewer than the corrected ones; else None.

    Words no visible model holds are corrected first, each to the candidate found most often
    with the query's other known words. When every word is known but together they match
    nothing (`typed_count` 0, when the caller knows it), the one replacement of one word
    that matches most is tried instead. Every count of one step is one statement (`_counts`).
    """
    typed_words = {w for term in terms for w in term.words if analysis.edits_allowed(w)}
    if not typed_words:
        return None
    unknown = sorted(w for w in typed_words if vocabulary.count(w) == 0)
    candidates = _candidates(unknown, scopes, vocabulary) if unknown else {}
    corrected_count = None
    if candidates:
        known = [t for t in terms if not any(w in candidates for w in t.words)]
        corrected = []
        corrections = 0
        for term in terms:
            for index, word in enumerate(term.words):
                if word in candidates:
                    options = [term.replaced(index, c, lexeme) for c, lexeme in candidates[word]]
                    alternatives = [[*known, option] for option in options]
                    if typed_count is None:
                        alternatives.append(terms)
                    found = _counts(models, alternatives)
                    if typed_count is None:
                        typed_count = found.pop()
                    best = max(range(len(options)), key=found.__getitem__)
                    term, corrected_count = options[best], found[best]
                    corrections += 1
            corrected.append(term)
        if corrections > 1:  # each counted with the others as typed: count them together
            corrected_count = None
    else:
        if typed_count is None:
            (typed_count,) = _counts(models, [terms])
        if typed_count:
            return None
        candidates = _candidates(sorted(typed_words), scopes, vocabulary)
        options = [
            [*terms[:position], term.replaced(index, c, lexeme), *terms[position + 1 :]]
            for position, term in enumerate(terms)
            for index, word in enumerate(term.words)
            for c, lexeme in candidates.get(word, ())
            if c != word
        ]
        if not options:
            return None
        found = _counts(models, options)
        best = max(range(len(options)), key=found.__getitem__)
        corrected, corrected_count = options[best], found[best]
    if corrected_count is None or typed_count is None:
        wanted = [corrected] if typed_count is not None else [terms, corrected]
        found = _counts(models, wanted)
        corrected_count = found[-1]
        if typed_count is None:
            typed_count = found[0]
    if corrected_count > 0 and (typed_count == 0 or corrected_count >= FAR_MORE * typed_count):
        return corrected
    return None


def _corrected_text(text: str, terms: list[Term], corrected: list[Term]) -> str:
    """The query as typed with each corrected word replaced."""
    replacements = {
        typed: right
        for before, after in zip(terms, corrected, strict=True)
        for typed, right in zip(before.words, after.words, strict=True)
        if typed != right
    }
    pattern = re.compile(
        "|".join(sorted(map(re.escape, replacements), key=len, reverse=True)), re.IGNORECASE
    )
    return pattern.sub(lambda m: replacements[m.group(0).lower()], text)


# -- ranking ----------------------------------------------------------------------------------


def _idf(terms: list[Term], vocabulary: Vocabulary) -> list[float]:
    """ln(1 + N / (1 + models holding the term's rarest word)), N the catalogue's size."""
    return [
        math.log(1.0 + vocabulary.size / (1.0 + min(vocabulary.count(w) for w in term.words)))
        for term in terms
    ]


def _score(terms: list[Term], idf: list[float], text: str, sv: str = _SV) -> tuple[str, list]:
    """The relevance of a row as SQL over the columns of "catalog_model" (`sv` its search
    vector: `_ranked_ids` passes a copy detoasted once per row)."""
    held, held_params = [], []
    name_hits, name_params = [], []
    for term, weight in zip(terms, idf, strict=True):
        cases, params = [], []
        if term.exact:
            for label, field_weight in FIELD_WEIGHTS:
                cases.append(f"WHEN {sv} @@ %s::tsquery THEN {field_weight}")
                params.append(_weighted(f"({term.exact})", label))
            cases.append(f'WHEN "catalog_model"."tags" && %s::varchar[] THEN {TAG_WEIGHT}')
            params.append(term.words)
            cases.append(f"WHEN {sv} @@ %s::tsquery THEN {OTHER_WEIGHT}")
            params.append(f"({term.exact})")
            name_hits.append(f"({sv} @@ %s::tsquery)::int")
            name_params.append(_weighted(f"({term.exact})", "A"))
        if term.prefix:
            cases.append(f"WHEN {sv} @@ %s::tsquery THEN {PREFIX_WEIGHT}")
            params.append(term.prefix)
        held.append(f"%s * (CASE {' '.join(cases)} ELSE 0 END)")
        held_params += [weight, *params]
    words = [w for term in terms for w in term.words]
    sql = (
        f"({' + '.join(held)}) / (1 + {LENGTH_NORMALISATION} * ln(1 + length({sv})))"
        f" + %s * LEAST(1.0, ({' + '.join(name_hits) or '0'})::float"
        """ / cardinality(regexp_split_to_array("catalog_model"."slug", '[-_]+')))"""
        f' + CASE WHEN "catalog_model"."slug" IN (%s, %s, %s) THEN {EXACT_NAME_BONUS} ELSE 0 END'
        f' + {POPULARITY_WEIGHT} * ln(1 + "catalog_model"."calls_30d")'
    )
    coverage_weight = NAME_COVERAGE_WEIGHT * sum(idf) / len(idf)
    params = [
        *held_params,
        coverage_weight,
        *name_params,
        text.strip().lower(),
        "-".join(words),
        "_".join(words),
    ]
    return sql, params


def _websearch(models, query: CatalogQuery):
    """A query with websearch syntax, taken as written: the models it matches, and the
    relevance SQL of a row (over `sv`, its search vector) with its parameters."""
    websearch = SearchQuery(query.text, search_type="websearch", config="english")
    matching = models.filter(search_vector=websearch)

    def score(sv: str) -> tuple[str, list]:
        return (
            f"ts_rank_cd({sv}, websearch_to_tsquery('english', %s))"
            f' + CASE WHEN "catalog_model"."slug" = %s THEN {EXACT_NAME_BONUS} ELSE 0 END'
            f' + {POPULARITY_WEIGHT} * ln(1 + "catalog_model"."calls_30d")',
            [query.text, query.text.strip().lower()],
        )

    return matching, score


def _sql(queryset) -> tuple[str, tuple]:
    return queryset.query.sql_with_params()


def _ranked_ids(pool: list, score, start: int, size: int) -> list:
    """One page of the pool, best first. The search vector is detoasted once per row (the
    subquery's copy) instead of once per term and field the score tests."""
    if not pool or size <= 0:
        return []
    score_sql, score_params = score('"catalog_model"."sv"')
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT m.id, m.slug, m.tags, m.calls_30d, "  # noqa: S608
            "m.search_vector || ''::tsvector AS sv, t.slug AS owner_slug "
            "FROM catalog_model m JOIN accounts_team t ON t.id = m.owner_id "
            'WHERE m.id = ANY(%s) OFFSET 0) AS "catalog_model" '
            f"ORDER BY {score_sql} DESC, calls_30d DESC, owner_slug, slug LIMIT %s OFFSET %s",
            [pool, *score_params, size, start],
        )
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def _search_settings(text: str):
    """The planner settings of one search, for its statements only (SET LOCAL, restored at
    the end):

    - no JIT: a search is a few small statements, and JIT compiling them costs far more
      than running them (at 1,000,000 models a browse's cost passes jit_above_cost);
    - for a text query, only bitmap scans: the matches come from the GIN index, rows are
      read in the heap's order and a LIMIT stops the reading. With a LIMIT over a broad
      match the planner prefers walking the table (or the visibility index) expecting to
      stop early, but every row it walks is one search vector detoasted and matched, a price
      its cost model does not see: 65 ms for the first thousand models holding "large" at
      100,000 models, against about a third of that through the bitmap. (A disabled plan
      costs 1e10, which is one more reason JIT must be off.)"""
    names = ["jit", *(("enable_seqscan", "enable_indexscan") if text else ())]
    # Outside a caller's transaction, the search's own ends with it and so do SET LOCAL
    # settings: one round trip to set them. Inside one, they are read first and put back.
    nested = connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One round trip each way: the values before, and the new ones.
            cursor.execute(
                "SELECT current_setting(name), set_config(name, 'off', true) "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS s(name, i) ORDER BY i",
                [names],
            )
            before = [row[0] for row in cursor.fetchall()]
        try:
            yield
        finally:
            if nested:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT set_config(name, value, true) "
                        "FROM unnest(%s::text[], %s::text[]) AS s(name, value)",
                        [names, before],
                    )


def search(principal, query: CatalogQuery) -> SearchResult:
    with _search_settings(query.text):
        return _search(principal, query)


@dataclass
class _TextMatch:
    """What a text query asks of the database: the models it matches, those holding every
    term (a subset, for the pool of candidates; None: the same as `matching`), and the
    relevance SQL of a row (None: no ranking)."""

    matching: object
    holding_all: object = None
    score: object = None


def _plain_match(models, query: CatalogQuery, terms: list[Term], vocabulary) -> _TextMatch:
    if not terms:  # only stop words or punctuation
        # Not .none(): the count and facets need a statement that finds nothing.
        return _TextMatch(models.filter(RawSQL("false", [], output_field=BooleanField())))
    condition, params = _matching(terms)
    holds = RawSQL(condition, params, output_field=BooleanField())  # noqa: S611
    idf = _idf(terms, vocabulary)

    def score(sv):
        return _score(terms, idf, query.text, sv)

    return _TextMatch(models.filter(holds), _holding(models, _all_of(terms)), score)


def _search(principal, query: CatalogQuery) -> SearchResult:
    if embeddings.hybrid_applies(query):
        # The query's embedding is computed while the statements below run.
        embeddings.prefetch_query_vector(query.text)
    models = filtered(principal, query)
    visible = models
    match = _TextMatch(models)
    corrected_query = ""
    # Every word is known: whether they match together, the main statement tells (its
    # models holding every term); only when none does is a correction looked for.
    correct_after = False
    if query.text:
        if _plain(query.text):
            scopes = visible_scopes(principal)
            terms, vocabulary = _terms(query.text, scopes)
            if terms and not query.verbatim:
                typed = [w for t in terms for w in t.words if analysis.edits_allowed(w)]
                if any(vocabulary.count(w) == 0 for w in typed):
                    corrected = _corrected(models, terms, scopes, vocabulary)
                    if corrected is not None:
                        corrected_query = _corrected_text(query.text, terms, corrected)
                        terms = corrected
                else:
                    correct_after = bool(typed)
            match = _plain_match(models, query, terms, vocabulary)
        else:
            matching, score = _websearch(models, query)
            match = _TextMatch(matching, matching, score)
    start = (query.page - 1) * query.page_size
    size = max(0, min(query.page_size, COUNT_LIMIT - start))
    window = max(RANK_WINDOW, start + size)
    ranked = bool(query.text and query.sort == "relevance" and match.score is not None and size)
    count, lower_bound, facets, pool, holding = _count_and_facets(
        match.matching, query, window, match.holding_all if ranked or correct_after else None
    )
    if correct_after and not holding:
        corrected = _corrected(models, terms, scopes, vocabulary, typed_count=0)
        if corrected is not None:
            corrected_query = _corrected_text(query.text, terms, corrected)
            match = _plain_match(models, query, corrected, vocabulary)
            count, lower_bound, facets, pool, holding = _count_and_facets(
                match.matching, query, window, match.holding_all if ranked else None
            )
    matching, score = match.matching, match.score
    if query.text and query.sort == "relevance":
        page = []
        if ranked:

            def text_page(begin, n, pool=pool, score=score):
                return _ranked_ids(pool, score, begin, n)

            # Meaning: the text ranking fused with the nearest embeddings (None: text only),
            # for what was meant: the corrected words when the typed ones were corrected.
            meant = dataclasses.replace(query, text=corrected_query) if corrected_query else query
            fused = embeddings.hybrid_ids(text_page, matching, visible, meant, start, size, count)
            if fused is not None:
                ids, count = fused
            else:
                ids = text_page(start, size)
            found = {model.pk: model for model in models.filter(pk__in=ids)}
            page = [found[pk] for pk in ids if pk in found]
    else:
        if query.text:
            # Sorted by a column, the planner may walk its index (model_newest,
            # model_popularity) and stop at the page: for a broad match, far fewer rows than
            # the bitmap's every match.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('enable_seqscan', 'on', true), "
                    "set_config('enable_indexscan', 'on', true)"
                )
        if query.sort == "recent":
            ordered = matching.order_by("-created_at", "owner__slug", "slug")
        else:
            ordered = matching.order_by("-calls_30d", "-updated_at", "owner__slug", "slug")
        page = list(ordered[start : start + size])
    return SearchResult(
        page,
        count,
        facets,
        "postgresql",
        corrected_query=corrected_query,
        count_is_lower_bound=lower_bound,
    )


FACET_COLUMNS = {"task": "task", "framework": "framework", "license": "license"}
MAX_TAG_FACETS = 30


def _count_and_facets(
    matching, query: CatalogQuery, window: int, holding_all=None
) -> tuple[int, bool, dict[str, list[dict]], list, bool]:
    """The number of matches, exact up to COUNT_LIMIT (beyond it, COUNT_LIMIT and True: a
    lower bound), every facet's counts over those first COUNT_LIMIT matches, and the pool
    of candidates to rank, in one statement: the text condition is evaluated once, over a
    materialised set of at most COUNT_LIMIT + 1 matches, not once per facet and never over
    every match.

    The pool (empty without `holding_all`): the `window` most popular of the counted
    matches, and the first `window` models holding every term (`holding_all`, answered by
    the GIN index alone, no vector read). Every one is a model `matching` finds, so the
    privacy rules of `models_visible_to` hold. Last, whether any model holds every term
    (always False without `holding_all`)."""
    inner, params = (
        matching.order_by()
        .values("id", "task", "framework", "license", "owner_id", "tags", "calls_30d")[
            : COUNT_LIMIT + 1
        ]
        .query.sql_with_params()
    )
    popular = window if holding_all is not None else 0
    parts = [
        "SELECT 'count', NULL, count(*) FROM found",
        "(SELECT 'popular', id::text, calls_30d FROM matches "  # noqa: S608 (a number)
        f"ORDER BY calls_30d DESC, id LIMIT {int(popular)})",
    ]
    first_sql, first_params = "", []
    if holding_all is not None:
        first_sql, first_params = (
            holding_all.order_by().values("id")[: int(window)].query.sql_with_params()
        )
        parts.append("SELECT 'first', id::text, 0 FROM holding_every_term")
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
    statement = (
        f"WITH found AS MATERIALIZED ({inner}), "  # noqa: S608 (the ORM's SQL and constants)
        f"matches AS (SELECT * FROM found LIMIT {COUNT_LIMIT}) "
        + (f", holding_every_term AS ({first_sql}) " if first_sql else "")
        + " UNION ALL ".join(parts)
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, *first_params])
        rows = cursor.fetchall()
    count = 0
    facets: dict[str, list[dict]] = {name: [] for name in query.facets}
    first, most_popular = [], []
    for name, value, number in rows:
        if name == "count":
            count = number
        elif name == "popular":
            most_popular.append(uuid.UUID(value))
        elif name == "first":
            first.append(uuid.UUID(value))
        else:
            facets[name].append({"value": value, "count": number})
    for name, values in facets.items():
        values.sort(key=lambda f: (-f["count"], f["value"]))
        if name == "tags":
            del values[MAX_TAG_FACETS:]
    pool = list(dict.fromkeys([*first, *most_popular]))
    return min(count, COUNT_LIMIT), count > COUNT_LIMIT, facets, pool, bool(first)


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
    """The query with its unknown words corrected from the dictionary of words the principal
    may see, when that finds models; at most one suggestion (the best)."""
    if not _plain(text):
        return []
    scopes = visible_scopes(principal)
    terms, vocabulary = _terms(text, scopes)
    if not terms:
        return []
    corrected = _corrected(selectors.models_visible_to(principal), terms, scopes, vocabulary)
    return [_corrected_text(text, terms, corrected)][:limit] if corrected else []


def health():
    return ComponentHealth(OK, NAME, "PostgreSQL full-text search")
