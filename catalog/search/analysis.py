"""How a query is cut into words, the same way the indexes cut the text (migration 0007's
`catalog_search_split`, the Elasticsearch mapping's `word_delimiter_graph`): a token that
joins words (`ARIMA/GARCH`, `fmpcloud.io`, `a-b`, `a_b`, `CamelCase`, `gpt2`, `v2.1`) is
the words inside it, all required; and the rules both engines share for typos and partial
matches. Pure functions."""

from __future__ import annotations

import re

_SPLITS = (
    (re.compile(r"([a-z])(?=[A-Z])"), r"\1 "),
    (re.compile(r"([A-Z])(?=[A-Z][a-z])"), r"\1 "),
    (re.compile(r"([^\W\d_])(?=\d)"), r"\1 "),
    (re.compile(r"(\d)(?=[^\W\d_])"), r"\1 "),
)
_NOT_ALNUM = re.compile(r"[\W_]+")
MAX_TERMS = 12
# Elasticsearch's `minimum_should_match` of the same rule: up to 2 words all are required,
# from 3 to 5 one may be missing, beyond that a quarter.
MINIMUM_SHOULD_MATCH = "2<-1 5<-25%"
# Elasticsearch's fuzziness of the same rule ("AUTO:4,8"): words of 4 to 7 letters may be one
# edit away, of 8 or more two.
FUZZINESS = "AUTO:4,8"


def parts(token: str) -> list[str]:
    """The lower-cased words inside one token: `ARIMA/GARCH` -> arima, garch."""
    for pattern, replacement in _SPLITS:
        token = pattern.sub(replacement, token)
    return [p for p in _NOT_ALNUM.split(token.lower()) if p]


def terms(text: str) -> list[list[str]]:
    """The query's terms, each the words of one whitespace-separated token; at most
    MAX_TERMS, repeated ones once."""
    found: list[list[str]] = []
    for token in text.split():
        words = parts(token)
        if words and words not in found:
            found.append(words)
    return found[:MAX_TERMS]


def required(count: int) -> int:
    """How many of `count` terms a model must match (MINIMUM_SHOULD_MATCH)."""
    if count <= 2:
        return count
    if count <= 5:
        return count - 1
    return count - count // 4


def edits_allowed(word: str) -> int:
    """Elasticsearch's fuzziness AUTO:4,8 for one word."""
    if len(word) < 4 or word.isdigit():
        return 0
    return 1 if len(word) < 8 else 2
