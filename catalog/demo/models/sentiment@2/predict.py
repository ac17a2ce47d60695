"""English sentiment (positive / negative / neutral): TF-IDF with negation marking + logistic
regression.

Trained in load() on data/reviews.csv: 468 short English review sentences written for this
package (234 positive, 234 negative), 152 more than version 1, many of them negated
("not bad at all", "I can't fault it", "not worth the money").

Negation handling: after a negation cue (not, no, never, nothing, n't, ...) every token up to
the next punctuation mark or contrast word ("but", "however") is prefixed with "not_", so
"not good" and "good" become different features (Das & Chen 2001; Pang, Lee & Vaithyanathan
2002).
"""

from __future__ import annotations

import csv
import re
from itertools import pairwise
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

MODEL_VERSION = "2.0.0"
CORPUS = Path(__file__).parent / "data" / "reviews.csv"
MAX_TEXTS = 1000
MAX_CHARS = 10_000
NEUTRAL_BAND = 0.2  # |polarity| below this is reported as "neutral"

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,!?;:]")
NEGATIONS = {
    "not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "nowhere",
    "hardly", "barely", "scarcely", "without", "cannot", "dont", "didnt", "doesnt", "isnt",
    "wasnt", "wont", "cant", "couldnt", "wouldnt", "shouldnt", "arent", "werent", "havent",
}  # fmt: skip
SCOPE_BREAKERS = {".", ",", "!", "?", ";", ":", "but", "however", "although", "though", "yet"}


def mark_negation(text: str) -> list[str]:
    """Lower-case tokens, with "not_" before every token in the scope of a negation."""
    tokens = []
    negated = False
    for token in TOKEN.findall(text.lower().replace("\u2019", "'")):
        if token in SCOPE_BREAKERS:
            negated = False
            continue
        if token in NEGATIONS or token.endswith("n't"):
            negated = True
            tokens.append("NEG")
            continue
        tokens.append(f"not_{token}" if negated else token)
    return tokens


def analyse(text: str) -> list[str]:
    """Unigrams and bigrams of the negation-marked tokens."""
    tokens = mark_negation(text)
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


def read_corpus() -> tuple[list[str], list[str]]:
    with CORPUS.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def build_model():
    return make_pipeline(
        TfidfVectorizer(analyzer=analyse, sublinear_tf=True),
        LogisticRegression(C=10.0, max_iter=1000, random_state=0),
    )


def load():
    texts, labels = read_corpus()
    model = build_model()
    model.fit(texts, labels)
    return model


def _texts(input) -> tuple[list[str], bool]:
    if isinstance(input, bytes):
        raise ValueError("send text (text/plain) or JSON, not binary data")
    if isinstance(input, str):
        return [input], True
    if isinstance(input, dict):
        if "text" in input and isinstance(input["text"], str):
            return [input["text"]], True
        if "texts" in input and isinstance(input["texts"], list):
            return _texts(input["texts"])[0], False
        raise ValueError('expected {"text": "..."} or {"texts": ["...", ...]}')
    if isinstance(input, list):
        if not input:
            raise ValueError("the list of texts is empty")
        if len(input) > MAX_TEXTS:
            raise ValueError(f"at most {MAX_TEXTS} texts per call (got {len(input)})")
        texts = []
        for i, item in enumerate(input):
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                item = item["text"]
            if not isinstance(item, str):
                raise ValueError(f'input[{i}] must be a string or {{"text": "..."}}')
            texts.append(item)
        return texts, False
    raise ValueError('expected a string, {"text": "..."}, or a list of strings')


def apply(input, model):
    texts, single = _texts(input)
    for i, text in enumerate(texts):
        if not text.strip():
            raise ValueError("the text is empty" if single else f"text {i} is empty")
        if len(text) > MAX_CHARS:
            raise ValueError(f"texts are limited to {MAX_CHARS} characters")
    positive = list(model.classes_).index("positive")
    results = []
    for p in model.predict_proba(texts)[:, positive]:
        polarity = 2 * float(p) - 1
        if abs(polarity) < NEUTRAL_BAND:
            label = "neutral"
        else:
            label = "positive" if polarity > 0 else "negative"
        results.append(
            {
                "label": label,
                "score": round(max(float(p), 1 - float(p)), 4),
                "polarity": round(polarity, 4),
                "model_version": MODEL_VERSION,
            }
        )
    return results[0] if single else results
