"""A catalogue search as the API and the pages ask for it, validated once; and the pure
builders of the Elasticsearch requests that answer it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from marketplace.core.errors import InputError

from . import analysis

SORTS = ("relevance", "popular", "recent")
FACETS = ("task", "framework", "license", "owner", "tags")
MAX_QUERY_LENGTH = 200
MAX_SUGGESTION_LENGTH = 100
# Far beyond any real browsing (Elasticsearch stops at 10,000 results anyway), and well
# inside the range of an SQL OFFSET: page=99999999999999999999 is a 400, not a 500.
MAX_PAGE = 10_000


@dataclass(frozen=True)
class CatalogQuery:
    text: str = ""
    tags: tuple[str, ...] = ()
    task: str = ""
    framework: str = ""
    license: str = ""
    owner: str = ""
    sort: str = "relevance"
    page: int = 1
    page_size: int = 20
    facets: tuple[str, ...] = field(default=FACETS)
    # The words exactly as typed: no spelling correction ("search instead for ...").
    verbatim: bool = False

    @classmethod
    def from_params(cls, params) -> CatalogQuery:
        for name in ("search", "q", "task", "framework", "license", "owner", "tags", "sort"):
            _refuse_nul(name, params.get(name))
        text = (params.get("search") or params.get("q") or "").strip()
        if len(text) > MAX_QUERY_LENGTH:
            raise InputError(f"search: at most {MAX_QUERY_LENGTH} characters")
        sort = (params.get("sort") or "relevance").strip()
        if sort not in SORTS:
            raise InputError(f"sort: one of {', '.join(SORTS)}")
        try:
            page = int(params.get("page") or 1)
            page_size = int(params.get("page_size") or 20)
        except ValueError:
            raise InputError("page and page_size must be whole numbers") from None
        if not 1 <= page <= MAX_PAGE or not 1 <= page_size <= 100:
            raise InputError(
                f"page must be between 1 and {MAX_PAGE:,} and page_size between 1 and 100"
            )
        raw_tags = (
            params.getlist("tags") if hasattr(params, "getlist") else [params.get("tags", "")]
        )
        tags = tuple(
            sorted(
                {t.strip().lower() for raw in raw_tags for t in (raw or "").split(",") if t.strip()}
            )
        )
        return cls(
            text=text,
            tags=tags,
            task=(params.get("task") or "").strip(),
            framework=(params.get("framework") or "").strip(),
            license=(params.get("license") or "").strip(),
            owner=(params.get("owner") or "").strip(),
            sort=sort if text or sort != "relevance" else "popular",
            page=page,
            page_size=page_size,
            verbatim=(params.get("verbatim") or "").strip().lower() in ("1", "true", "yes"),
        )


def suggestion_text(raw: str | None) -> str:
    """What the user typed into the search box, checked for autocompletion."""
    _refuse_nul("q", raw)
    return (raw or "")[:MAX_SUGGESTION_LENGTH]


def _refuse_nul(name: str, value: str | None) -> None:
    # PostgreSQL text cannot hold a NUL: a 400 here rather than a 500 from the database.
    if value and "\x00" in value:
        raise InputError(f"{name}: must not contain a NUL character")


@dataclass
class SearchResult:
    models: list
    count: int
    facets: dict[str, list[dict]]
    engine: str
    # Not empty when the words as typed found nothing (or far less) and the results are
    # those of this corrected query instead.
    corrected_query: str = ""
    # True when `count` is a lower bound: matches are counted exactly only up to a limit
    # (Elasticsearch's track_total_hits), and the facets then count a sample of the matches
    # (the first ones the engine found), not all of them.
    count_is_lower_bound: bool = False


# -- Elasticsearch request bodies -----------------------------------------------------------
#
# Pure functions from a query (and the owners whose private models the principal may see) to
# the JSON body of a `_search` request, so what the engine asks is testable as data. The
# visibility filter is in every body, in the filter of the top-level bool (or of the collate
# query of the spelling suggester), so hits, counts, facets and suggestions are all computed
# over the models the principal may see and nothing else.

_WORD = re.compile(r"\w+", re.UNICODE)
# The same test as the PostgreSQL engine's: quotes, -word, or.
_OPERATORS = re.compile(r'"|(^|\s)-\w|\s(or|OR)\s')
MIN_TYPO_LENGTH = 4
# Elasticsearch refuses from + size beyond index.max_result_window (10,000 by default).
MAX_RESULT_WINDOW = 10_000
# Both engines count matches exactly up to this many (`track_total_hits`); beyond, the count
# is a lower bound (SearchResult.count_is_lower_bound) and the facets count a sample of this
# many matches (a `sampler` aggregation; the PostgreSQL engine's first matches).
TRACK_TOTAL_HITS = 1_000
FACET_SIZE = 200
TAG_FACET_SIZE = 30
MAX_CORRECTION_WORDS = 8

# Where a word matched, as the PostgreSQL ranking weighs it: name > title > tagline > tags >
# task, framework, owner > README.
TEXT_FIELDS = [
    "name^10",
    "title^8",
    "tagline^6",
    "tags.text^4",
    "task.text^3",
    "framework.text^3",
    "owner.text^2",
    "readme",
]
PREFIX_FIELDS = ["name.prefix^2", "title.prefix"]
# The exact name wins over everything else; popularity and recency only reorder close scores.
EXACT_NAME_BOOST = 100.0
# Popularity and recency only break near-ties: a fraction of one matched word's score.
POPULARITY_WEIGHT = 0.1  # times log10(1 + calls over 30 days): at most ~0.3 for 1,000 calls
RECENCY_WEIGHT = 0.05  # times a gaussian decay of the age of the last update
RECENCY_SCALE = "180d"

SIMPLE_QUERY_FLAGS = "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE"


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def uses_operators(text: str) -> bool:
    """True when the text uses websearch syntax (quotes, -word, or); then prefix and typo
    matching do not widen it, or they would undo what the syntax asked."""
    return bool(_OPERATORS.search(text))


def simple_query_string(text: str) -> str:
    """websearch_to_tsquery's syntax in simple_query_string's: words are ANDed, "quoted
    words" are a phrase, -word or -"a phrase" excludes, `or` between two terms is OR.

    Only words (\\w+) of the input reach the output, so nothing the user types can be an
    operator of simple_query_string except through this translation."""
    terms: list[str | None] = []  # None marks an `or`
    for match in re.finditer(r'(-?)"([^"]*)"?|(\S+)', text):
        sign, phrase, token = match.group(1), match.group(2), match.group(3)
        if token is not None:
            if token in ("or", "OR"):
                terms.append(None)
                continue
            negated = token.startswith("-") and len(token) > 1 and bool(_WORD.match(token[1:]))
            found = _WORD.findall(token)
            if not found:
                continue
            term = found[0] if len(found) == 1 else "(" + " ".join(found) + ")"
        else:
            found = _WORD.findall(phrase)
            if not found:
                continue
            negated = sign == "-"
            term = '"' + " ".join(found) + '"'
        terms.append(f"-{term}" if negated else term)
    groups: list[list[str]] = []
    joining = False
    for term in terms:
        if term is None:
            joining = bool(groups)
            continue
        if joining:
            groups[-1].append(term)
        else:
            groups.append([term])
        joining = False
    return " ".join(
        group[0] if len(group) == 1 else "(" + " | ".join(group) + ")" for group in groups
    )


def visibility_filter(private_owner_ids) -> dict:
    """Public models, or private ones of the given owners (the principal's teams)."""
    public = {"term": {"visibility": "public"}}
    if not private_owner_ids:
        return public
    return {
        "bool": {
            "should": [public, {"terms": {"owner_id": sorted(set(private_owner_ids))}}],
            "minimum_should_match": 1,
        }
    }


def _filters(query: CatalogQuery, private_owner_ids) -> list[dict]:
    filters = [visibility_filter(private_owner_ids)]
    for field_name in ("task", "framework", "license", "owner"):
        value = getattr(query, field_name)
        if value:
            filters.append({"term": {field_name: value}})
    # Every tag must match: one term each.
    filters.extend({"term": {"tags": tag}} for tag in query.tags)
    return filters


def _text_query(text: str, verbatim: bool = False) -> dict:
    """Websearch syntax as written; otherwise one clause per term (token) of the query, the
    words inside it all required, each matched in its best field with typos forgiven
    (fuzziness AUTO:4,8, as the PostgreSQL engine corrects them), and a model holding enough
    terms (`analysis.MINIMUM_SHOULD_MATCH`: 2 of 3...) matches; or, while typing, every word
    starting a word of the name or title."""
    syntax = simple_query_string(text)
    if not syntax:
        return {"match_none": {}}
    if uses_operators(text):
        return {
            "simple_query_string": {
                "query": syntax,
                "fields": TEXT_FIELDS,
                "default_operator": "and",
                "flags": SIMPLE_QUERY_FLAGS,
                "lenient": True,
            }
        }
    terms = analysis.terms(text)
    if not terms:
        return {"match_none": {}}
    fuzzy = {} if verbatim else {"fuzziness": analysis.FUZZINESS, "prefix_length": 0}
    each_term = [
        {
            "multi_match": {
                "query": " ".join(words),
                "type": "best_fields",
                "fields": TEXT_FIELDS,
                "operator": "and",
                "tie_breaker": 0.3,
                **fuzzy,
            }
        }
        for words in terms
    ]
    plain = " ".join(w for words in terms for w in words)
    alternatives = [
        {"bool": {"should": each_term, "minimum_should_match": analysis.MINIMUM_SHOULD_MATCH}},
        # While typing: every word may be the start of a word of the name or title.
        {
            "multi_match": {
                "query": plain,
                "type": "cross_fields",
                "fields": PREFIX_FIELDS,
                "operator": "and",
            }
        },
    ]
    return {"bool": {"should": alternatives, "minimum_should_match": 1}}


def _sort(query: CatalogQuery) -> list:
    tie_breakers = [{"owner": "asc"}, {"name.keyword": "asc"}]
    if query.sort == "recent":
        return [{"created_at": "desc"}, *tie_breakers]
    if query.sort == "relevance" and query.text:
        return ["_score", {"calls_30d": "desc"}, *tie_breakers]
    return [{"calls_30d": "desc"}, {"updated_at": "desc"}, *tie_breakers]


def _aggregations(query: CatalogQuery) -> dict:
    order = [{"_count": "desc"}, {"_key": "asc"}]
    aggs = {}
    for name in FACETS:
        if name in query.facets:
            size = TAG_FACET_SIZE if name == "tags" else FACET_SIZE
            aggs[name] = {"terms": {"field": name, "size": size, "order": order}}
    return aggs


def elasticsearch_search_body(query: CatalogQuery, private_owner_ids) -> dict:
    """The `_search` body of a catalogue search: hits, total and facets in one request."""
    bool_query: dict = {"filter": _filters(query, private_owner_ids)}
    if query.text:
        bool_query["must"] = [_text_query(query.text, query.verbatim)]
        bool_query["should"] = [
            {
                "constant_score": {
                    "filter": {"term": {"name.keyword": query.text.strip().lower()}},
                    "boost": EXACT_NAME_BOOST,
                }
            }
        ]
    search_query: dict = {"bool": bool_query}
    if query.text and query.sort == "relevance":
        search_query = {
            "function_score": {
                "query": search_query,
                "functions": [
                    {
                        "field_value_factor": {
                            "field": "calls_30d",
                            "modifier": "log1p",
                            "factor": 1,
                            "missing": 0,
                        },
                        "weight": POPULARITY_WEIGHT,
                    },
                    {
                        "gauss": {
                            "updated_at": {"origin": "now", "scale": RECENCY_SCALE, "decay": 0.5}
                        },
                        "weight": RECENCY_WEIGHT,
                    },
                ],
                "score_mode": "sum",
                "boost_mode": "sum",
            }
        }
    start = (query.page - 1) * query.page_size
    body = {
        "query": search_query,
        "sort": _sort(query),
        "from": min(start, MAX_RESULT_WINDOW),
        "size": max(0, min(query.page_size, MAX_RESULT_WINDOW - start)),
        "track_total_hits": TRACK_TOTAL_HITS,
        "_source": False,
    }
    aggs = _aggregations(query)
    if aggs:
        # The facets of at most TRACK_TOTAL_HITS best matches per shard: exact whenever the
        # count is, and bounded work when a query matches most of the catalogue.
        body["aggs"] = {
            "sample": {"sampler": {"shard_size": TRACK_TOTAL_HITS}, "aggs": aggs},
        }
    if corrects_spelling(query):
        # In the same request: the spelling correction, and how many hits the words as typed
        # find (`corrected_query_from_response` compares it with the total).
        typed = correction_words(query.text)
        body["suggest"] = {
            "text": " ".join(typed),
            CORRECTION_SUGGESTER: _phrase_suggester(typed, private_owner_ids, 1),
        }
        body.setdefault("aggs", {})[AS_TYPED_AGGREGATION] = {"filter": _as_typed_query(query.text)}
    return body


def elasticsearch_suggest_body(text: str, private_owner_ids, limit: int = 8) -> dict:
    """Autocompletion of names and titles: a word of either starting with what was typed
    (edge n-grams), the name itself starting with it first, and close names for typos.

    A `_search` rather than the completion suggester, because a completion suggester can
    only be narrowed by contexts, not by the visibility filter every body carries."""
    text = text.strip().lower()
    should: list[dict] = [
        {"prefix": {"name.keyword": {"value": text, "boost": 3.0}}},
        {
            "multi_match": {
                "query": text,
                "type": "cross_fields",
                "fields": PREFIX_FIELDS,
                "operator": "and",
            }
        },
    ]
    if len(text) >= MIN_TYPO_LENGTH:
        should.append(
            {
                "multi_match": {
                    "query": text,
                    "fields": ["name.prefix", "title.prefix"],
                    "operator": "and",
                    "fuzziness": "AUTO",
                    "prefix_length": 1,
                    "boost": 0.5,
                }
            }
        )
    return {
        "query": {
            "bool": {
                "filter": [visibility_filter(private_owner_ids)],
                "should": should,
                "minimum_should_match": 1,
            }
        },
        "sort": ["_score", {"calls_30d": "desc"}, {"name.keyword": "asc"}],
        "size": limit,
        "_source": False,
    }


# The search answers for a corrected query when the words as typed match no model, or this
# many times fewer than the corrected ones (the PostgreSQL engine's FAR_MORE).
FAR_MORE = 20
CORRECTION_SUGGESTER = "corrected"
AS_TYPED_AGGREGATION = "as_typed"


def correction_words(text: str) -> list[str]:
    """The words the spelling suggester reads: the query cut as both engines cut it."""
    return [w for term in analysis.terms(text) for w in term][:MAX_CORRECTION_WORDS]


def _phrase_suggester(typed: list[str], private_owner_ids, size: int) -> dict:
    """The phrase suggester of a spelling correction, with the per-word rules of fuzziness
    AUTO:4,8 (`analysis.edits_allowed`): one candidate generator per rule, a word of 4+
    letters may be one edit away, of 8+ two; any number of the words may be corrected.
    Its candidates come from the whole index, so each suggestion is collated: kept only when
    the corrected words all together find a model the principal may see (the visibility
    filter is in the collate query), so no word of a private model is ever suggested to
    someone who may not see it."""
    collate = {
        "bool": {
            "filter": [
                visibility_filter(private_owner_ids),
                {
                    "simple_query_string": {
                        "query": "{{suggestion}}",
                        "fields": TEXT_FIELDS,
                        "default_operator": "and",
                        "flags": "WHITESPACE",
                        "lenient": True,
                    }
                },
            ]
        }
    }
    generators = [
        {
            "field": "spell",
            "suggest_mode": "always",
            "max_edits": edits,
            "min_word_length": length,
            "prefix_length": 0,
        }
        for edits, length in ((1, 4), (2, 8))
    ]
    return {
        "phrase": {
            "field": "spell.shingles",
            "size": size,
            "max_errors": float(max(1, len(typed))),
            "direct_generator": generators,
            "collate": {"query": {"source": collate}, "prune": False},
        }
    }


def _as_typed_query(text: str) -> dict:
    """Every term of the query as typed, no typo forgiven: how many of the hits the words
    as typed find, to compare with the hits the fuzzy query finds."""
    return {
        "bool": {
            "must": [
                {
                    "multi_match": {
                        "query": " ".join(words),
                        "type": "best_fields",
                        "fields": [*TEXT_FIELDS, *PREFIX_FIELDS],
                        "operator": "and",
                    }
                }
                for words in analysis.terms(text)
            ]
        }
    }


def corrects_spelling(query: CatalogQuery) -> bool:
    """True when a search may answer for corrected words: plain words (no websearch syntax),
    not asked verbatim, and at least one word long enough for a typo (AUTO:4,8)."""
    if not query.text or query.verbatim or uses_operators(query.text):
        return False
    return any(analysis.edits_allowed(w) for w in correction_words(query.text))


def elasticsearch_corrections_body(text: str, private_owner_ids, limit: int = 3) -> dict:
    """Spelling corrections alone (the page's "did you mean" when nothing matched): the
    phrase suggester of `_phrase_suggester`."""
    typed = correction_words(text)
    return {
        "size": 0,
        "query": {"bool": {"filter": [visibility_filter(private_owner_ids)]}},
        "track_total_hits": False,
        "suggest": {
            "text": " ".join(typed),
            "correction": _phrase_suggester(typed, private_owner_ids, limit),
        },
    }


def corrected_text(text: str, typed: list[str], suggested: str) -> str:
    """The query as typed with each corrected word replaced (its punctuation and the case of
    the words left alone kept), or the suggestion itself when it does not align word for
    word."""
    right = suggested.split()
    if len(right) != len(typed):
        return suggested
    replacements = {a: b for a, b in zip(typed, right, strict=True) if a != b}
    if not replacements:
        return ""
    pattern = re.compile(
        "|".join(
            rf"(?<![^\W_]){re.escape(a)}(?![^\W_])"
            for a in sorted(replacements, key=len, reverse=True)
        ),
        re.IGNORECASE,
    )
    corrected = pattern.sub(lambda m: replacements[m.group(0).lower()], text)
    # A word corrected inside a token (`TensorFlw`) is not found alone in the text.
    return suggested if corrected == text else corrected


def corrected_query_from_response(query: CatalogQuery, response: dict) -> str:
    """The corrected query a search answered for, read from its response ("" when none): the
    best collated suggestion, when the words as typed found no hit (the `as_typed` filter
    aggregation) or FAR_MORE times fewer than the fuzzy query found. The same rule as the
    PostgreSQL engine's, over the same AUTO:4,8 edits per word."""
    if not corrects_spelling(query):
        return ""
    typed = correction_words(query.text)
    options = [
        option
        for entry in (response.get("suggest") or {}).get(CORRECTION_SUGGESTER, [])
        for option in entry.get("options", [])
        if option.get("collate_match", True) and option["text"] != " ".join(typed)
    ]
    if not options:
        return ""
    found = response["hits"]["total"]["value"]
    as_typed = (response.get("aggregations") or {}).get(AS_TYPED_AGGREGATION, {})
    typed_count = as_typed.get("doc_count", 0)
    if found == 0 or not (typed_count == 0 or found >= FAR_MORE * typed_count):
        return ""
    return corrected_text(query.text, typed, options[0]["text"])


def facets_from_aggregations(aggregations: dict) -> dict[str, list[dict]]:
    """Facets in the engines' shape: [{"value", "count"}], most frequent first, then by value;
    tags cut to the top 30 like the PostgreSQL engine. The terms aggregations are read
    inside the `sample` sampler of `elasticsearch_search_body` (or at the top, unwrapped)."""
    aggregations = aggregations.get("sample", aggregations)
    facets = {}
    for name in FACETS:
        if name not in aggregations:
            continue
        values = sorted(
            (
                {"value": bucket["key"], "count": bucket["doc_count"]}
                for bucket in aggregations[name]["buckets"]
            ),
            key=lambda f: (-f["count"], f["value"]),
        )
        facets[name] = values[:TAG_FACET_SIZE] if name == "tags" else values
    return facets
