"""The embedding interface: texts in, L2-normalised float32 rows out (cosine = inner product)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class EmbedderError(Exception):
    """The backend could not embed (model missing, endpoint failed); the message says why."""


class Embedder(Protocol):
    #: Stored with every chunk and index; vectors of different models are never mixed.
    model: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Shape (len(texts), dim), float32, each row of unit length. Blocking: call from a thread."""
        ...

    def probe(self) -> None:
        """Learn ``dim`` from the model where it is not known before a first call. Blocking."""
        ...


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    normalised: np.ndarray = rows / norms
    return normalised
