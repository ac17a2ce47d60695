"""News topic classifier: sports, technology, politics, business, science.

Word unigrams/bigrams and character 3-5-grams (robust to word forms never seen in training:
"footballer", "cryptocurrencies"), TF-IDF weighted, into a multinomial logistic regression.
Trained in load() on data/headlines.csv, 225 news-style headlines written for this package
(45 per topic).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

CORPUS = Path(__file__).parent / "data" / "headlines.csv"
MAX_TEXTS = 1000
MAX_CHARS = 20_000


def read_corpus() -> tuple[list[str], list[str]]:
    with CORPUS.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["text"] for row in rows], [row["topic"] for row in rows]


def build_model():
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english"),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True),
    )
    return make_pipeline(features, LogisticRegression(C=20.0, max_iter=2000, random_state=0))


def load():
    texts, topics = read_corpus()
    return build_model().fit(texts, topics)


def _texts(input) -> tuple[list[str], bool, int]:
    """(texts, single, top_k) from any accepted input shape."""
    top_k = 3
    if isinstance(input, bytes):
        raise ValueError("send text (text/plain) or JSON, not binary data")
    if isinstance(input, dict):
        top_k = input.get("top_k", 3)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 5:
            raise ValueError('"top_k" must be an integer from 1 to 5')
        if isinstance(input.get("text"), str):
            return [input["text"]], True, top_k
        if isinstance(input.get("texts"), list):
            input = input["texts"]
        else:
            raise ValueError(
                'expected {"text": "..."} or {"texts": ["...", ...]} (optionally with "top_k")'
            )
    elif isinstance(input, str):
        return [input], True, top_k
    if not isinstance(input, list):
        raise ValueError('expected a string, {"text": "..."}, or a list of strings')
    if not input:
        raise ValueError("the list of texts is empty")
    if len(input) > MAX_TEXTS:
        raise ValueError(f"at most {MAX_TEXTS} texts per call (got {len(input)})")
    for i, item in enumerate(input):
        if not isinstance(item, str):
            raise ValueError(f"text {i} must be a string")
    return input, False, top_k


def apply(input, model):
    texts, single, top_k = _texts(input)
    for i, text in enumerate(texts):
        if not text.strip():
            raise ValueError("the text is empty" if single else f"text {i} is empty")
        if len(text) > MAX_CHARS:
            raise ValueError(f"texts are limited to {MAX_CHARS} characters")
    classes = [str(c) for c in model.classes_]
    results = []
    for p in model.predict_proba(texts):
        order = np.argsort(-p)[:top_k]
        results.append(
            {
                "topic": classes[order[0]],
                "confidence": round(float(p[order[0]]), 4),
                "ranking": [
                    {"topic": classes[i], "probability": round(float(p[i]), 4)} for i in order
                ],
            }
        )
    return results[0] if single else results
