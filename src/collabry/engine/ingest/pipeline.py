"""Ingestion of one source: parse -> chunk -> embed in batches -> store chunks -> commit -> status.

Memory stays bounded whatever the file's size: the file is parsed page by page (or block by
block), and chunks are embedded and written one batch at a time. The chunks become searchable only
at the commit (one atomic log entry), and the previous version of the source is deleted after it,
so a search sees the old version or the new one, never a mix; on failure, whatever was written is
deleted and the source is left ``failed`` with a reason, with nothing of it indexed.

Two ingestions of the same source race safely: each claims the source with its ``ingest_id``, and
only the current claimant may commit; the loser deletes its own chunks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from ...db.chunks import Chunks
from ...db.client import Database, new_id, utcnow
from ...db.sources import Sources
from ..embeddings.base import Embedder, EmbedderError
from ..index.state import IndexLog, ModelMismatch
from ..index.store import IndexStore
from ..metrics import INGEST_CHUNKS, INGEST_SECONDS, INGESTIONS
from .chunk import Chunk, chunk_segments
from .parse import ParseError, parse_file

log = structlog.get_logger("collabry.ingest")

MAX_CHUNKS = 200_000  # a guard against pathological inputs, far above any real course material


class Superseded(Exception):
    """A newer ingestion (or a delete) of the same source took over."""


class Ingestor:
    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        index_log: IndexLog,
        store: IndexStore,
        *,
        chunk_chars: int,
        chunk_overlap: int,
        batch: int,
        run_blocking: Callable[..., Any],
    ) -> None:
        self.db = db
        self.sources = Sources(db)
        self.chunks = Chunks(db)
        self.embedder = embedder
        self.log = index_log
        self.store = store
        self.chunk_chars = chunk_chars
        self.chunk_overlap = chunk_overlap
        self.batch = batch
        self.run_blocking = run_blocking  # runs CPU-bound work off the event loop
        # One ingestion embeds at a time, so queries are not starved behind a large upload.
        self._embedding = asyncio.Semaphore(1)
        self._running: dict[asyncio.Task[Any], str] = {}  # ingestion task -> its user

    async def claim(self, source_id: str, user_id: str) -> str | None:
        """Mark the source as being ingested by a new ingest id; None if it is not the user's."""
        ingest_id = new_id()
        return ingest_id if await self.sources.claim_ingestion(source_id, user_id, ingest_id, utcnow()) else None

    async def run(self, source_id: str, user_id: str, notebook_id: str, ingest_id: str, path: Path, kind: str) -> None:
        """Ingest ``path``; always leaves the source ``ready`` or ``failed`` (unless superseded)."""
        started = time.perf_counter()
        task = asyncio.current_task()
        assert task is not None
        self._running[task] = user_id
        try:
            count = await self._ingest(source_id, user_id, notebook_id, ingest_id, path, kind)
        except asyncio.CancelledError:
            # The engine is stopping: leave a clear state rather than "processing" forever.
            await asyncio.shield(
                self._fail(source_id, user_id, ingest_id, "indexing was interrupted by a restart; upload it again")
            )
            raise
        except Superseded:
            await self._discard(user_id, source_id, ingest_id)
            INGESTIONS.labels("superseded").inc()
            log.info("ingest_superseded", source_id=source_id)
            return
        except (ParseError, ModelMismatch, EmbedderError) as exc:
            await self._fail(source_id, user_id, ingest_id, str(exc))
            return
        except Exception as exc:
            log.exception("ingest_crashed", source_id=source_id)
            await self._fail(source_id, user_id, ingest_id, f"internal error while indexing ({type(exc).__name__})")
            return
        finally:
            self._running.pop(task, None)
        INGESTIONS.labels("ready").inc()
        INGEST_SECONDS.observe(time.perf_counter() - started)
        log.info("ingested", source_id=source_id, chunks=count, ms=round((time.perf_counter() - started) * 1000))

    async def _ingest(
        self, source_id: str, user_id: str, notebook_id: str, ingest_id: str, path: Path, kind: str
    ) -> int:
        await self.log.check_model(user_id, self.embedder.model, self.embedder.dim)
        chunks = self._chunks(path, kind)
        count = 0
        while True:
            batch: list[Chunk] = await self.run_blocking(_take, chunks, self.batch)
            if not batch:
                break
            count += len(batch)
            if count > MAX_CHUNKS:
                raise ParseError(f"the source is too large to index (over {MAX_CHUNKS} passages)")
            async with self._embedding:
                vectors = await self.run_blocking(self.embedder.embed, [c.text for c in batch])
            # Checked before each write, not after: a source deleted meanwhile (or an account
            # erased) gets nothing more written for it, not even the index's id counter.
            await self._still_current(source_id, ingest_id)
            await self._store(source_id, user_id, notebook_id, ingest_id, batch, vectors)
        if count == 0:
            raise ParseError("no text could be extracted from the file (empty, or only images)")
        await self._commit(source_id, user_id, ingest_id, count)
        return count

    def _chunks(self, path: Path, kind: str) -> Iterator[Chunk]:
        return chunk_segments(parse_file(path, kind), self.chunk_chars, self.chunk_overlap)

    async def _store(
        self, source_id: str, user_id: str, notebook_id: str, ingest_id: str, batch: list[Chunk], vectors: np.ndarray
    ) -> None:
        first = await self.log.allocate(user_id, len(batch))
        model, dim = self.embedder.model, self.embedder.dim
        docs = [
            {
                "_id": new_id(),
                "user_id": user_id,
                "notebook_id": notebook_id,
                "source_id": source_id,
                "ingest_id": ingest_id,
                "seq": first + i,
                "ord": chunk.ord,
                "page": chunk.page,
                "text": chunk.text,
                "vector": vectors[i].astype(np.float32).tobytes(),
                "model": model,
                "dim": dim,
            }
            for i, chunk in enumerate(batch)
        ]
        await self.chunks.insert(docs)
        INGEST_CHUNKS.inc(len(docs))

    async def _still_current(self, source_id: str, ingest_id: str) -> None:
        doc = await self.sources.get(source_id)
        if not doc or doc.get("ingest_id") != ingest_id or doc.get("deleted_at") is not None:
            raise Superseded

    async def _commit(self, source_id: str, user_id: str, ingest_id: str, count: int) -> None:
        await self._still_current(source_id, ingest_id)
        await self.log.commit(user_id, "add", source_id, ingest_id, model=self.embedder.model, dim=self.embedder.dim)
        # The previous version (if any) is no longer referenced by the log: delete its rows.
        await self.chunks.delete_other_ingestions(user_id, source_id, ingest_id)
        await self.sources.finish_ingestion(source_id, ingest_id, "ready", chunks=count, error=None,
                                            indexed_at=utcnow())
        await self.store.refresh(user_id)

    async def _discard(self, user_id: str, source_id: str, ingest_id: str) -> None:
        await self.chunks.delete_ingestion(user_id, source_id, ingest_id)

    async def _fail(self, source_id: str, user_id: str, ingest_id: str, reason: str) -> None:
        INGESTIONS.labels("failed").inc()
        log.warning("ingest_failed", source_id=source_id, reason=reason)
        await self._discard(user_id, source_id, ingest_id)
        doc = await self.sources.get(source_id)
        if not doc or doc.get("ingest_id") != ingest_id:
            return  # a newer ingestion or a delete owns the source now
        # A failed source has nothing indexed: an earlier ready version leaves the index as well.
        state = await self.log.state(user_id)
        if source_id in state.sources:
            await self.log.commit(user_id, "remove", source_id)
            await self.chunks.delete_source(user_id, source_id)
            await self.store.refresh(user_id)
        await self.sources.finish_ingestion(source_id, ingest_id, "failed", chunks=0, error=reason)

    async def cancel_user(self, user_id: str, timeout: float = 10.0) -> int:
        """Stop the user's running ingestions and wait (up to ``timeout``) until each has removed
        what it wrote: the account is being erased, and nothing may be written after that."""
        tasks = [task for task, owner in self._running.items() if owner == user_id]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        return len(tasks)

    async def delete(self, source_id: str, user_id: str) -> None:
        """Remove a source's chunks and vectors; idempotent. A running ingestion of it is abandoned."""
        await self.sources.drop_ingestion(source_id, user_id)
        state = await self.log.state(user_id)
        if source_id in state.sources:
            await self.log.commit(user_id, "remove", source_id)
        await self.chunks.delete_source(user_id, source_id)
        await self.store.refresh(user_id)


def _take(chunks: Iterator[Chunk], n: int) -> list[Chunk]:
    out = []
    for chunk in chunks:
        out.append(chunk)
        if len(out) >= n:
            break
    return out
