"""The per-user FAISS indexes of one engine process: lazy loading, catch-up, LRU, snapshots, search.

Each user has one ``IndexIDMap2(IndexFlatIP)`` (cosine on normalised vectors); FAISS ids are the
chunks' ``seq``. Retrieval is filtered *before* ranking: the allowed sources become a bitmap over
the index rows that FAISS consults while it scans, so other sources' vectors never compete for the
top k (and another user's vectors are in another index altogether).

Every search checks the user's log head, mirrored in Redis by the writers (one Redis read, in
flight while the index is scanned; the database when Redis has no current value: ``index.heads``),
and replays what this replica has not seen, so replicas converge without sharing files. Indexes stay
in memory in LRU order while their total size fits ``memory_budget``; dirty ones are snapshotted
by a background task, on eviction and on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np
import structlog

from ...loops import Stop
from .heads import Head
from .snapshot import SnapshotData, SnapshotError, read_snapshot, snapshot_path, write_snapshot
from .state import IndexLog, IndexState, ModelMismatch

log = structlog.get_logger("collabry.index")


# Scans up to this many floats (20,000 vectors of 384 dimensions, ~0.5 ms on one core) run on the
# event loop; larger ones in the executor, so one large index does not hold up every other request.
INLINE_SEARCH_FLOATS = 20_000 * 384

RowMeta = tuple[str, int, int | None, str]  # chunk id, order in its source, PDF page, text


@dataclass(slots=True)  # not frozen: a frozen dataclass' __init__ costs a setattr call per field
class Hit:
    vid: int
    score: float
    source_id: str
    chunk_id: str
    ord: int
    page: int | None
    text: str


class UserIndex:
    """One user's vectors and the passages they stand for. Not thread-safe: event loop only.

    The passages' text is kept with the vectors (and in the snapshot) so a search never has to read
    chunks back from the database: an answer costs no database read beyond the small index head.
    """

    def __init__(self, user_id: str, model: str, dim: int) -> None:
        self.user_id = user_id
        self.model = model
        self.dim = dim
        self.seq = 0
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        # Per row, aligned with the flat index's storage: vector id, source number, passage.
        self.row_vid = np.zeros(0, dtype=np.int64)
        self.row_source = np.zeros(0, dtype=np.int32)
        self.row_meta: list[RowMeta] = []
        self.source_names: list[str] = []
        self.source_number: dict[str, int] = {}
        self.source_rows: dict[int, int] = {}  # source number -> rows held
        self.ingests: dict[str, str] = {}  # source_id -> committed ingest_id
        self.text_bytes = 0
        self.dirty_since: float | None = None  # when the first change not yet in a snapshot happened
        self.dirty = False

    @property
    def dirty(self) -> bool:
        return self.dirty_since is not None

    @dirty.setter
    def dirty(self, value: bool) -> None:
        if not value:
            self.dirty_since = None
        elif self.dirty_since is None:
            self.dirty_since = time.time()

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def memory_bytes(self) -> int:
        # vectors + FAISS id map + our row arrays + passages (text and per-row object overhead).
        return self.ntotal * (self.dim * 4 + 8 + 8 + 4 + 160) + self.text_bytes + 64 * len(self.source_names) + 4096

    def _number(self, source_id: str) -> int:
        number = self.source_number.get(source_id)
        if number is None:
            number = len(self.source_names)
            self.source_names.append(source_id)
            self.source_number[source_id] = number
        return number

    def add_source(
        self, source_id: str, ingest_id: str, vids: np.ndarray, vectors: np.ndarray, metas: list[RowMeta]
    ) -> None:
        """Replace the source's rows with ``vectors`` (ids ``vids``, passages ``metas``)."""
        self.remove_source(source_id)
        self.ingests[source_id] = ingest_id
        if len(vids) == 0:
            return
        if vectors.shape[1] != self.dim:
            raise ModelMismatch(self.user_id, self.model, self.dim, self.model, int(vectors.shape[1]))
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.add_with_ids(vectors, np.ascontiguousarray(vids, dtype=np.int64))
        number = self._number(source_id)
        self.row_vid = np.concatenate([self.row_vid, vids.astype(np.int64)])
        self.row_source = np.concatenate([self.row_source, np.full(len(vids), number, dtype=np.int32)])
        self.row_meta.extend(metas)
        self.source_rows[number] = len(vids)
        self.text_bytes += sum(len(m[3]) for m in metas)
        self.dirty = True

    def remove_source(self, source_id: str) -> None:
        self.ingests.pop(source_id, None)
        number = self.source_number.get(source_id)
        if number is None or not self.source_rows.get(number):
            return
        rows = self.row_source == number
        # IndexIDMap2 compacts its storage in order, exactly as this mask does.
        self.index.remove_ids(faiss.IDSelectorBatch(self.row_vid[rows]))
        self.row_vid = self.row_vid[~rows]
        self.row_source = self.row_source[~rows]
        kept = (~rows).tolist()
        self.text_bytes -= sum(len(m[3]) for m, keep in zip(self.row_meta, kept, strict=True) if not keep)
        self.row_meta = [m for m, keep in zip(self.row_meta, kept, strict=True) if keep]
        del self.source_rows[number]
        self.dirty = True

    def passages_of(self, source_id: str) -> list[RowMeta]:
        """A source's passages in reading order."""
        number = self.source_number.get(source_id)
        if number is None or not self.source_rows.get(number):
            return []
        rows = np.flatnonzero(self.row_source == number)
        return sorted((self.row_meta[r] for r in rows), key=lambda m: m[1])

    def search(self, vector: np.ndarray, allowed_sources: Iterable[str], k: int) -> list[Hit]:
        """Top ``k`` rows among ``allowed_sources`` only (the filter is applied inside the scan)."""
        n = self.ntotal
        if n == 0 or k <= 0:
            return []
        rows_held, number_of = self.source_rows, self.source_number
        numbers = {number_of[s] for s in allowed_sources if s in number_of and rows_held.get(number_of[s])}
        if not numbers:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        k = min(k, n)
        if len(numbers) == len(rows_held):
            scores, rows = self.index.index.search(query, k)  # every row is allowed: no selector needed
        else:
            table = np.zeros(len(self.source_names), dtype=bool)
            table[list(numbers)] = True
            bitmap = np.packbits(table[self.row_source], bitorder="little")
            selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
            params = faiss.SearchParameters()
            params.sel = selector
            scores, rows = self.index.index.search(query, k, params=params)
        found, scored = rows[0], scores[0]
        if found[-1] < 0:  # fewer than k rows passed the filter: FAISS pads with -1
            kept = found >= 0
            found, scored = found[kept], scored[kept]
        # Whole-array reads and one list each (numpy scalar reads per hit cost more than the rest).
        meta, names = self.row_meta, self.source_names
        return [
            Hit(vid, score, names[number], *meta[row])
            for row, vid, number, score in zip(
                found.tolist(), self.row_vid[found].tolist(), self.row_source[found].tolist(), scored.tolist(),
                strict=True,
            )
        ]

    def snapshot_data(self) -> SnapshotData:
        used = sorted(set(self.source_rows) | {self.source_number[s] for s in self.ingests})
        header = {
            "user_id": self.user_id,
            "model": self.model,
            "dim": self.dim,
            "seq": self.seq,
            "sources": [[self.source_names[i], self.ingests.get(self.source_names[i], "")] for i in used],
        }
        # Source numbers are renumbered densely in the snapshot.
        renumber = np.full(max(len(self.source_names), 1), -1, dtype=np.int32)
        renumber[used] = np.arange(len(used), dtype=np.int32)
        return SnapshotData(
            header,
            faiss.serialize_index(self.index),
            self.row_vid.copy(),
            renumber[self.row_source] if len(self.row_source) else self.row_source.copy(),
            json.dumps(self.row_meta, ensure_ascii=False, separators=(",", ":")).encode(),
        )

    @classmethod
    def from_snapshot(cls, data: SnapshotData) -> UserIndex:
        h = data.header
        idx = cls(h["user_id"], h["model"], int(h["dim"]))
        index = faiss.deserialize_index(np.array(data.index_bytes))
        if not isinstance(index, faiss.IndexIDMap2):
            index = faiss.downcast_index(index)
        idx.index = cast(faiss.IndexIDMap2, index)
        idx.seq = int(h["seq"])
        idx.row_vid = np.array(data.row_vid, dtype=np.int64)
        idx.row_source = np.array(data.row_source, dtype=np.int32)
        idx.row_meta = [cast(RowMeta, tuple(m)) for m in json.loads(data.meta_bytes)]
        idx.text_bytes = sum(len(m[3]) for m in idx.row_meta)
        for name, ingest in h["sources"]:
            idx._number(name)
            if ingest:
                idx.ingests[name] = ingest
        numbers, counts = np.unique(idx.row_source, return_counts=True)
        idx.source_rows = dict(zip(numbers.tolist(), counts.tolist(), strict=True))
        consistent = idx.ntotal == len(idx.row_vid) == len(idx.row_meta)
        if not consistent or not np.array_equal(faiss.vector_to_array(idx.index.id_map), idx.row_vid):
            raise SnapshotError(f"snapshot of {idx.user_id}: rows do not match the index")
        return idx


async def build_from_database(
    index_log: IndexLog,
    state: IndexState,
    model: str,
    dim: int,
    run_blocking: Callable[..., Awaitable[Any]] = asyncio.to_thread,
) -> UserIndex:
    """A user's index built only from the database (``collabry index rebuild``, a replica too far
    behind the log); the vectors are added by ``run_blocking`` (a thread)."""
    idx = UserIndex(state.user_id, model, dim)
    async for source_id, ingest_id, vids, vectors, metas in index_log.user_vectors(state):
        await run_blocking(idx.add_source, source_id, ingest_id, vids, vectors, metas)
    idx.seq = state.seq
    return idx


class IndexStore:
    """All users' indexes in this process. A user's index changes and is searched only under that
user's lock; FAISS work in ``run_blocking`` (the engine's executor), except short searches."""

    def __init__(
        self,
        index_log: IndexLog,
        state_dir: Path,
        *,
        model: str,
        dim: int,
        memory_budget: int = 512 * 2**20,
        run_blocking: Callable[..., Awaitable[Any]] | None = None,
        inline_search_floats: int = INLINE_SEARCH_FLOATS,
    ) -> None:
        self.log = index_log
        self.inline_search_floats = inline_search_floats
        # FAISS releases the GIL while it scans: searches over a large index run in the engine's
        # executor, so they do not hold up every other request on the loop.
        self.run_blocking = run_blocking or asyncio.to_thread
        self.state_dir = state_dir
        self.model = model
        self.dim = dim
        self.memory_budget = memory_budget
        self._cache: OrderedDict[str, UserIndex] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    @property
    def memory_bytes(self) -> int:
        return sum(i.memory_bytes() for i in self._cache.values())

    @property
    def users(self) -> int:
        """How many users' indexes are in memory."""
        return len(self._cache)

    def snapshot_age(self) -> float:
        """Seconds the oldest change not yet written to a snapshot has waited (0: all written)."""
        oldest = min((i.dirty_since for i in self._cache.values() if i.dirty_since is not None), default=None)
        return 0.0 if oldest is None else time.time() - oldest

    def cached(self, user_id: str) -> UserIndex | None:
        return self._cache.get(user_id)

    async def current(self, user_id: str) -> UserIndex:
        """The user's index, loaded if needed and caught up with the database."""
        async with self._lock(user_id):
            idx = self._cache.get(user_id)
            # Loading reads the database's head (it reads the database anyway); a loaded index is
            # kept current with the head mirrored in Redis.
            head_seq, model, dim = await self.log.head(user_id, authoritative=idx is None)
            if model and (model != self.model or dim != self.dim):
                raise ModelMismatch(user_id, model, dim, self.model, self.dim)
            if idx is None:
                idx = await self._load(user_id)
                self._cache[user_id] = idx
            self._cache.move_to_end(user_id)
            if idx.seq != head_seq:
                idx = self._cache[user_id] = await self._catch_up(idx)
                if idx.seq < head_seq and self.log.heads is not None:
                    await self.log.heads.drop(user_id)  # the mirror is ahead of the database (a restore)
            await self._evict()
            return idx

    async def head(self, user_id: str) -> Head:
        """The user's log head as a search checks it (the mirror in Redis; the database when it has
        no current value): read it while the query is being embedded and pass it to ``search``."""
        return await self.log.head(user_id)

    async def search(
        self, user_id: str, vector: np.ndarray, allowed_sources: Iterable[str], k: int, *, head: Head | None = None
    ) -> list[Hit]:
        """The top ``k`` hits among ``allowed_sources`` in the user's index, current as of ``head``
        (``head()`` read since the caller's request began: ``Retriever`` reads it while the query is
        embedded, so no round trip is left for the search itself) or, without it, as of a head read
        here, in flight while the index is scanned."""
        allowed = list(allowed_sources)
        cached = self._cache.get(user_id)
        if cached is not None:
            # The usual case: the index is in memory and current. The hits are used only if the
            # head proves the index current; otherwise the index catches up below and is searched again.
            async with self._lock(user_id):
                hits: list[Hit] | None = None
                inline = cached.ntotal * cached.dim <= self.inline_search_floats
                if head is not None:
                    if self._is_current(cached, head):  # otherwise no scan: the catch-up comes first
                        hits = cached.search(vector, allowed, k) if inline \
                            else await self.run_blocking(cached.search, vector, allowed, k)
                elif inline:
                    # A short scan costs less than the hop to a thread (where it would also queue
                    # behind embedding batches): it runs on the loop while Redis answers the head.
                    head, hits = await self.log.head_around(user_id, lambda: cached.search(vector, allowed, k))
                else:
                    reading = asyncio.ensure_future(self.log.head(user_id))
                    try:
                        hits = await self.run_blocking(cached.search, vector, allowed, k)
                    finally:
                        head = await reading
                if hits is not None and self._is_current(cached, head):
                    self._cache.move_to_end(user_id)
                    return hits
        idx = await self.current(user_id)
        async with self._lock(user_id):  # the index may not change while a thread searches it
            found: list[Hit] = await self.run_blocking(idx.search, vector, allowed, k)
            return found

    def _is_current(self, idx: UserIndex, head: Head) -> bool:
        """``idx`` is the user's index in memory and has every change up to ``head``, of our model."""
        seq, model, dim = head
        return seq == idx.seq and (not model or (model, dim) == (self.model, self.dim)) \
            and self._cache.get(idx.user_id) is idx

    async def _load(self, user_id: str) -> UserIndex:
        path = snapshot_path(self.state_dir, user_id)
        if path.exists():
            try:
                data = await asyncio.to_thread(read_snapshot, path)
                idx = await asyncio.to_thread(UserIndex.from_snapshot, data)
                if idx.model == self.model and idx.dim == self.dim and idx.user_id == user_id:
                    return idx
                log.warning("snapshot_ignored", user_id=user_id, reason="model or user differs")
            except (SnapshotError, OSError, RuntimeError, KeyError, ValueError) as exc:
                log.warning("snapshot_ignored", user_id=user_id, reason=str(exc))
        return UserIndex(user_id, self.model, self.dim)

    async def _catch_up(self, idx: UserIndex) -> UserIndex:
        """Replay the log after ``idx.seq``; rebuild from the database when the log cannot reach back."""
        state = await self.log.state(idx.user_id)
        entries = state.replayable_from(idx.seq)
        if entries is None:
            started = time.perf_counter()
            idx = await build_from_database(self.log, state, self.model, self.dim, self.run_blocking)
            idx.dirty = True
            log.info(
                "index_reloaded", user_id=idx.user_id, rows=idx.ntotal, ms=round((time.perf_counter() - started) * 1000)
            )
            return idx
        for entry in entries:
            if entry["op"] == "add":
                vids, vectors, metas = await self.log.source_vectors(
                    idx.user_id, entry["source_id"], entry["ingest_id"]
                )
                await self.run_blocking(idx.add_source, entry["source_id"], entry["ingest_id"], vids, vectors, metas)
            elif entry["op"] == "remove":
                await self.run_blocking(idx.remove_source, entry["source_id"])
            idx.seq = entry["seq"]
        # Whatever the log says, the committed set is authoritative.
        for source_id in set(idx.ingests) - set(state.sources):
            await self.run_blocking(idx.remove_source, source_id)
        idx.seq = max(idx.seq, state.seq)
        idx.dirty = True
        return idx

    async def _evict(self) -> None:
        while len(self._cache) > 1 and self.memory_bytes > self.memory_budget:
            user_id, idx = next(iter(self._cache.items()))
            lock = self._lock(user_id)
            if lock.locked():
                break  # in use right now; try again on the next access
            async with lock:
                if idx.dirty:
                    await self.snapshot(idx)
                self._cache.pop(user_id, None)
                log.info("index_evicted", user_id=user_id)

    async def forget(self, user_id: str) -> bool:
        """Drop the user's index from memory and its snapshot from disk (the account is being
        erased); True when this process had either."""
        async with self._lock(user_id):
            cached = self._cache.pop(user_id, None) is not None
            path = snapshot_path(self.state_dir, user_id)
            had_file = await asyncio.to_thread(path.exists)
            await asyncio.to_thread(path.unlink, missing_ok=True)
            if self.log.heads is not None:
                await self.log.heads.drop(user_id)
        self._locks.pop(user_id, None)
        return cached or had_file

    async def snapshot(self, idx: UserIndex) -> int:
        if self._cache.get(idx.user_id) is not idx:
            return 0  # forgotten (or replaced) meanwhile: a forgotten user's file must not come back
        data = idx.snapshot_data()  # copies taken on the loop, written from a thread
        idx.dirty = False
        try:
            return await asyncio.to_thread(write_snapshot, snapshot_path(self.state_dir, idx.user_id), data)
        except OSError:
            idx.dirty = True
            raise

    async def flush(self) -> int:
        """Snapshot every dirty index; returns how many were written."""
        written = 0
        for idx in list(self._cache.values()):
            if not idx.dirty:
                continue
            # under the user's lock: a catch-up may be changing the index in a thread
            async with self._lock(idx.user_id):
                try:
                    written += 1 if await self.snapshot(idx) else 0
                except OSError as exc:
                    log.error("snapshot_failed", user_id=idx.user_id, error=str(exc))
        return written

    async def flush_every(self, interval: float, stop: Stop) -> None:
        """Snapshot changed indexes every ``interval`` s until ``stop`` (see ``loops``: a cancel
        alone may be lost, and this loop outlives errors)."""
        while await stop.sleep(interval):
            with contextlib.suppress(Exception):
                await self.flush()

    async def refresh(self, user_id: str) -> None:
        """Catch up a loaded index now (after a local commit), so its snapshot follows soon."""
        if user_id in self._cache:
            await self.current(user_id)
