"""Make the relevance suite of bench/search_relevance.py from a list of real one-line package
summaries (name TAB version TAB month TAB rank TAB summary, with a header line), such as
the PyPI list of this workplace. Deterministic: the same list gives the same files.

    python tests/catalog/search/relevance/make_suite.py /path/to/pypi.tsv

Writes, beside this file:
- catalogue.tsv: 6,000 `name TAB tagline` rows: names that are valid model slugs, summaries
  of 4 to 25 words that are not placeholders, each summary once, chosen by a hash of the
  name (so neither alphabetical nor by popularity);
- queries.tsv: `kind TAB query TAB expected name` rows: 300 `exact` queries of the three
  most distinctive words (fewest models containing them) of a model's tagline, in tagline
  order, and the same 300 as `typo` with one letter dropped from one word of 4+ letters.
  The hand-written `meaning` queries live in meaning.tsv (edited by hand, never rewritten).
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = 6000
QUERIES = 300
SLUG = re.compile(r"^[a-z][a-z0-9_-]{1,63}$")
WORD = re.compile(r"[a-z]+")
STOP = {
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "by",
    "for",
    "from",
    "has",
    "have",
    "in",
    "into",
    "is",
    "it",
    "its",
    "of",
    "on",
    "or",
    "that",
    "the",
    "this",
    "to",
    "was",
    "were",
    "will",
    "with",
    "your",
    "you",
    "can",
    "not",
    "all",
    "any",
    "our",
    "use",
    "using",
    "used",
    "via",
    "based",
    "simple",
    "package",
    "library",
    "python",
    "module",
    "tool",
    "tools",
    "",
}
PLACEHOLDERS = re.compile(
    r"short description|add a short|example package|test package|my (first|own)|"
    r"placeholder|hello world|^\W*$|description|todo|lorem|package takeover|a python package$",
    re.IGNORECASE,
)


def _key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def catalogue(source: Path) -> list[tuple[str, str]]:
    seen_summaries: set[str] = set()
    seen_names: set[str] = set()
    rows = []
    with source.open(encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for fields in reader:
            if len(fields) != 5:
                continue
            name, summary = fields[0].strip().lower().replace(".", "-"), " ".join(fields[4].split())
            if not SLUG.match(name) or not summary.isascii() or PLACEHOLDERS.search(summary):
                continue
            if not 4 <= len(summary.split()) <= 25 or len(summary) > 200:
                continue
            if summary.lower() in seen_summaries or name in seen_names:
                continue
            seen_summaries.add(summary.lower())
            seen_names.add(name)
            rows.append((name, summary))
    rows.sort(key=lambda row: _key(row[0]))
    return rows[:SIZE]


def queries(rows: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    document_frequency = Counter(
        w for _, tagline in rows for w in set(WORD.findall(tagline.lower()))
    )
    rng = random.Random(16)
    chosen = []
    for name, tagline in rng.sample(rows, len(rows)):
        words = [
            w for w in dict.fromkeys(WORD.findall(tagline.lower())) if len(w) >= 3 and w not in STOP
        ]
        if len(words) < 3 or not any(len(w) >= 4 for w in words):
            continue
        rarest = sorted(words, key=lambda w: (document_frequency[w], words.index(w)))[:3]
        picked = [w for w in words if w in rarest]
        if not any(len(w) >= 4 for w in picked):
            continue
        chosen.append((name, picked))
        if len(chosen) == QUERIES:
            break
    exact = [("exact", " ".join(words), name) for name, words in chosen]
    typo = []
    for name, words in chosen:
        long_ones = [i for i, w in enumerate(words) if len(w) >= 4]
        i = rng.choice(long_ones)
        position = rng.randrange(len(words[i]))
        typed = list(words)
        typed[i] = words[i][:position] + words[i][position + 1 :]
        typo.append(("typo", " ".join(typed), name))
    return exact + typo


def main(source: str) -> None:
    rows = catalogue(Path(source))
    with (HERE / "catalogue.tsv").open("w", encoding="utf-8") as f:
        f.writelines(f"{name}\t{tagline}\n" for name, tagline in rows)
    with (HERE / "queries.tsv").open("w", encoding="utf-8") as f:
        f.writelines(f"{kind}\t{text}\t{name}\n" for kind, text, name in queries(rows))
    print(f"{len(rows)} models, {2 * QUERIES} queries in {HERE}")


if __name__ == "__main__":
    main(sys.argv[1])
