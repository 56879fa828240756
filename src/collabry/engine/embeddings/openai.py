"""Any OpenAI-compatible embeddings endpoint, through the ``openai`` client."""

from __future__ import annotations

import numpy as np

from .base import EmbedderError, l2_normalise


class OpenAIEmbedder:
    def __init__(self, base_url: str, model: str, api_key: str, *, timeout: float = 60.0, batch: int = 64) -> None:
        import openai

        self._errors = (openai.OpenAIError,)
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=2)
        self.model = model
        self.batch = batch
        self.dim = 0  # learnt from the first answer; `probe` fills it at start

    def probe(self) -> None:
        self.embed(["dimension probe"])

    def embed(self, texts: list[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch):
            try:
                answer = self.client.embeddings.create(model=self.model, input=texts[i : i + self.batch])
            except self._errors as exc:
                raise EmbedderError(f"the embeddings endpoint failed: {exc}") from exc
            rows.extend(item.embedding for item in sorted(answer.data, key=lambda d: d.index))
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        matrix = l2_normalise(np.array(rows, dtype=np.float32))
        if self.dim and matrix.shape[1] != self.dim:
            raise EmbedderError(f"the endpoint changed dimension from {self.dim} to {matrix.shape[1]}")
        self.dim = matrix.shape[1]
        return matrix
