"""Retrieval for one user: the allowed sources come from the database, then the user's own index is
searched with only those sources eligible (see ``index.store``), then passages are read back.

Passages come from the index itself (it keeps each vector's text), so a retrieval reads only two
small things, both while the query is embedded: the user's allowed sources (database) and the
index's log head (Redis, the database when Redis has no current value).

The allowed set is the intersection of: the user's sources (never anyone else's, whatever ids the
caller sends), not deleted, ``ready``, in the notebook if one is given, and among ``source_ids`` if
given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..db.ai_sessions import Citation
from ..db.client import Database
from ..db.sources import Sources
from .embeddings.base import Embedder
from .embeddings.batching import QueryBatcher
from .index.store import IndexStore
from .metrics import RETRIEVAL_SECONDS


@dataclass(frozen=True, slots=True)
class Passage:
    source_id: str
    title: str
    chunk_id: str
    score: float
    text: str
    page: int | None = None
    ord: int = 0

    def citation(self) -> Citation:
        """The passage as stored with the answer's message."""
        out = Citation(source_id=self.source_id, title=self.title, chunk_id=self.chunk_id, score=self.score,
                       text=self.text)
        if self.page is not None:
            out["page"] = self.page
        return out

    def public(self) -> dict[str, Any]:
        """A source reference as API.md names its fields (plus the PDF page when known)."""
        out: dict[str, Any] = {
            "sourceId": self.source_id,
            "title": self.title,
            "chunkId": self.chunk_id,
            "score": self.score,
            "text": self.text,
        }
        if self.page is not None:
            out["page"] = self.page
        return out


class Retriever:
    def __init__(self, db: Database, embedder: Embedder, store: IndexStore, run_blocking: Callable[..., Any]) -> None:
        self.db = db
        self.store = store
        self.queries = QueryBatcher(embedder, run_blocking)  # concurrent questions share model calls

    async def allowed_sources(
        self, user_id: str, notebook_id: str | None, source_ids: list[str] | None
    ) -> dict[str, str]:
        """{source_id: title} the user may retrieve from under these filters."""
        ready = await Sources(self.db).ready(user_id, notebook_id, source_ids)
        return {doc["_id"]: doc.get("title") or "Untitled" for doc in ready}

    async def embed_query(self, text: str) -> np.ndarray:
        return await self.queries.embed(text)

    async def retrieve(
        self,
        user_id: str,
        query: str,
        *,
        notebook_id: str | None = None,
        source_ids: list[str] | None = None,
        k: int = 6,
    ) -> list[Passage]:
        started = time.perf_counter()
        # The two small reads (the allowed sources, the index's log head) run while the query is
        # embedded: the search that follows has no round trip of its own left.
        allowed_task = asyncio.ensure_future(self.allowed_sources(user_id, notebook_id, source_ids))
        head_task = asyncio.ensure_future(self.store.head(user_id))
        try:
            vector = await self.embed_query(query)
            allowed = await allowed_task
            head = await head_task
        finally:
            # When one step fails the others are not needed: stop them, and collect what they
            # ended with, so a second failure is not reported as never retrieved.
            for task in (allowed_task, head_task):
                task.cancel()
            await asyncio.gather(allowed_task, head_task, return_exceptions=True)
        if not allowed:
            return []
        hits = await self.store.search(user_id, vector, allowed.keys(), k, head=head)
        RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
        return [
            Passage(h.source_id, allowed[h.source_id], h.chunk_id, round(h.score, 4), h.text, h.page, h.ord)
            for h in hits
        ]
