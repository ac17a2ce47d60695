"""Marks the words of a result that the query matched, for any engine.

The text is escaped piece by piece and only `<mark>` is added, so a model's title or tagline
can never inject markup. Matching mirrors what the engines match: a word starting with a
query word (prefix while typing), or sharing its stem (a crude common-prefix rule that
covers "translate"/"translator"/"translation")."""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_TOKEN = re.compile(r"\w+", re.UNICODE)
_EXCLUDED = re.compile(r'(?:^|\s)-(?:"[^"]*"|\S+)')
_STOPWORDS = frozenset({"or", "and", "the", "a", "an", "of", "for", "to", "in", "on"})


def query_terms(query: str) -> tuple[str, ...]:
    """The words of a search that should be marked: not excluded ones (-word) nor `or`."""
    text = _EXCLUDED.sub(" ", query or "")
    words = {w.lower() for w in _TOKEN.findall(text)}
    return tuple(sorted(w for w in words if w not in _STOPWORDS and len(w) >= 2))


def _matches(word: str, terms: tuple[str, ...]) -> bool:
    word = word.lower()
    for term in terms:
        if word.startswith(term):
            return True
        if len(term) >= 5 and len(word) >= 5:
            shared = len(_common_prefix(word, term))
            if shared >= max(5, len(term) - 3):
                return True
    return False


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def highlight(text: str, query: str) -> SafeString:
    text = text or ""
    terms = query_terms(query)
    if not terms:
        return mark_safe(escape(text))  # noqa: S308 - escaped
    pieces, position = [], 0
    for match in _TOKEN.finditer(text):
        if _matches(match.group(), terms):
            pieces.append(escape(text[position : match.start()]))
            pieces.append(f"<mark>{escape(match.group())}</mark>")
            position = match.end()
    pieces.append(escape(text[position:]))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece escaped
