"""English sentiment (positive / negative): TF-IDF + logistic regression.

The model is trained in load() on data/reviews.csv, a corpus of 316 short English review
sentences written for this package (product, restaurant, travel, film and service reviews,
balanced 158 positive / 158 negative). Training takes well under a second.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

CORPUS = Path(__file__).parent / "data" / "reviews.csv"
MAX_TEXTS = 1000
MAX_CHARS = 10_000


def read_corpus() -> tuple[list[str], list[str]]:
    with CORPUS.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def build_model():
    return make_pipeline(
        TfidfVectorizer(lowercase=True, ngram_range=(1, 2), sublinear_tf=True, min_df=1),
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
        label = "positive" if p >= 0.5 else "negative"
        results.append(
            {
                "label": label,
                "score": round(float(p if label == "positive" else 1 - p), 4),
                "polarity": round(float(2 * p - 1), 4),
            }
        )
    return results[0] if single else results
