"""Questions embedded together: the ones that arrive while the model is busy go in its next call.

One short question costs the local model about as much as a batch of a few (the call's fixed cost
dominates: ~3.6 ms for one, ~1.4 ms each in a batch of 32 on one core), and under load every
answer starts by embedding its question. So a question never waits for company: it is embedded at
once when the model is free, and those that arrive meanwhile are embedded together next (the
embedder splits a long list into its own batches). No timer: a lone question pays nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from .base import Embedder


class QueryBatcher:
    def __init__(self, embedder: Embedder, run_blocking: Callable[..., Awaitable[Any]]) -> None:
        self.embedder = embedder
        self.run_blocking = run_blocking  # the model runs off the event loop
        self._waiting: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        self._runner: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Questions waiting for the model's next call."""
        return len(self._waiting)

    async def embed(self, text: str) -> np.ndarray:
        """The question's vector (one row of ``embedder.embed``)."""
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._waiting.append((text, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="query-embedding")
        return await future

    async def _run(self) -> None:
        batch: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        try:
            while self._waiting:
                batch = [(text, future) for text, future in self._waiting if not future.done()]  # callers gone
                self._waiting = []
                if batch:
                    await self._embed(batch)
        except asyncio.CancelledError:  # the engine is stopping: nobody waiting gets a vector
            for _, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting = []
            raise
        finally:
            self._runner = None

    async def _embed(self, batch: list[tuple[str, asyncio.Future[np.ndarray]]]) -> None:
        try:
            vectors = await self.run_blocking(self.embedder.embed, [text for text, _ in batch])
        except Exception as exc:  # the model failed: each question of this call gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), vector in zip(batch, vectors, strict=True):
            if not future.done():
                future.set_result(vector)
