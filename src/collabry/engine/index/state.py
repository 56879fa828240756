"""The database side of the indexes: the per-user index log and the chunk vectors.

``index_state`` holds one document per user::

    {_id: user_id, seq, next_vid, model, dim,
     sources: {source_id: ingest_id},           # what is committed now
     log: [{seq, op: "add"|"remove"|"reset", source_id, ingest_id}]}  # the last LOG_KEEP changes

A chunk's ``seq`` is its vector id (the FAISS id), allocated per user from ``next_vid``. Chunks are
written first and become visible only when their source's ``add`` is committed to the log; the
commit is a compare-and-set on ``seq`` and the allocation one ``$inc`` (each a single-document
update, atomic on DocumentDB and MongoDB without transactions), so concurrent writers on any
engine replica need no lock. A replica whose index is at sequence L replays log entries after L; if the
log no longer reaches back to L (or says ``reset``), it reloads the user from ``sources``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...db.chunks import Chunks
from ...db.client import Database, utcnow
from ...db.index_state import IndexStates
from .heads import IndexHeads, T

LOG_KEEP = 200


class ModelMismatch(Exception):
    """Vectors of another embedding model (or dimension) are stored for this user."""

    def __init__(self, user_id: str, stored: str, stored_dim: int, current: str, current_dim: int) -> None:
        super().__init__(
            f"this user's vectors were made with {stored} ({stored_dim} dims) but the engine embeds with "
            f"{current} ({current_dim} dims); run `collabry index rebuild --user {user_id}` to re-embed them"
        )
        self.user_id = user_id


@dataclass
class IndexState:
    user_id: str
    seq: int = 0
    model: str = ""
    dim: int = 0
    sources: dict[str, str] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)

    def replayable_from(self, seq: int) -> list[dict[str, Any]] | None:
        """Log entries after ``seq`` in order, or None when the log does not reach back that far."""
        if seq == self.seq:
            return []
        if seq > self.seq:  # the database went back in time (a restore): start again
            return None
        entries = [e for e in self.log if e["seq"] > seq]
        if not entries or entries[0]["seq"] != seq + 1 or any(e["op"] == "reset" for e in entries):
            return None
        return entries


def _state(doc: dict[str, Any] | None, user_id: str) -> IndexState:
    if not doc:
        return IndexState(user_id)
    return IndexState(
        user_id,
        seq=int(doc.get("seq", 0)),
        model=doc.get("model", ""),
        dim=int(doc.get("dim", 0)),
        sources=dict(doc.get("sources") or {}),
        log=list(doc.get("log") or []),
    )


class IndexLog:
    """A user's index state document: its log of source additions and removals, and vector ids."""

    def __init__(self, db: Database, heads: IndexHeads | None = None) -> None:
        self.db = db
        self.states = IndexStates(db)
        self.chunks = Chunks(db)
        self.heads = heads  # the head mirrored in Redis (engine.index.heads); None: the database only

    async def head(self, user_id: str, *, authoritative: bool = False) -> tuple[int, str, int]:
        """(seq, model, dim) only: the cheap check done before every search, one Redis read when
        the head is mirrored there, the database otherwise (and when ``authoritative``: loading an
        index, checking the model before an ingestion)."""
        if not authoritative and self.heads is not None and (mirrored := await self.heads.get(user_id)) is not None:
            return mirrored
        return await self._seeded_head(user_id)

    async def head_around(self, user_id: str, work: Callable[[], T]) -> tuple[tuple[int, str, int], T]:
        """``head`` and ``work()``, run on the loop while the mirrored head's read is in flight."""
        if self.heads is None:
            return await self.head_in_database(user_id), work()
        mirrored, result = await self.heads.get_around(user_id, work)
        return (mirrored if mirrored is not None else await self._seeded_head(user_id)), result

    async def _seeded_head(self, user_id: str) -> tuple[int, str, int]:
        found = await self.head_in_database(user_id)
        if self.heads is not None:
            await self.heads.seed(user_id, found)
        return found

    async def head_in_database(self, user_id: str) -> tuple[int, str, int]:
        doc = await self.states.get(user_id, ("seq", "model", "dim"))
        if not doc:
            return 0, "", 0
        return int(doc.get("seq", 0)), doc.get("model", ""), int(doc.get("dim", 0))

    async def state(self, user_id: str) -> IndexState:
        return _state(await self.states.get(user_id), user_id)

    async def users(self) -> list[str]:
        return await self.states.users()

    async def check_model(self, user_id: str, model: str, dim: int) -> None:
        _, stored, stored_dim = await self.head(user_id, authoritative=True)
        if stored and (stored != model or stored_dim != dim):
            raise ModelMismatch(user_id, stored, stored_dim, model, dim)

    async def allocate(self, user_id: str, count: int) -> int:
        """Reserve ``count`` vector ids; returns the first. Gaps (failed ingestions) are harmless."""
        await self.states.ensure(user_id)
        return await self.states.allocate(user_id, count)

    async def commit(
        self,
        user_id: str,
        op: str,
        source_id: str,
        ingest_id: str | None = None,
        *,
        model: str | None = None,
        dim: int | None = None,
    ) -> int:
        """Append ``op`` to the user's log atomically; returns its sequence number.

        ``add`` (with ``model``/``dim``) refuses to mix models: ``ModelMismatch``.
        """
        await self.states.ensure(user_id)
        if self.heads is None:
            return await self._commit(user_id, op, source_id, ingest_id, model, dim)
        async with self.heads.writing(user_id) as committed:
            seq = await self._commit(user_id, op, source_id, ingest_id, model, dim)
            state = await self.state(user_id)  # the head as committed (a later commit may be in it too)
            committed.append((state.seq, state.model, state.dim))
            return seq

    async def _commit(
        self, user_id: str, op: str, source_id: str, ingest_id: str | None, model: str | None, dim: int | None
    ) -> int:
        for _ in range(100):
            state = await self.state(user_id)
            sets: dict[str, Any] = {}
            if op == "add":
                if state.model and (state.model != model or state.dim != dim):
                    raise ModelMismatch(user_id, state.model, state.dim, model or "", dim or 0)
                sets.update({f"sources.{source_id}": ingest_id, "model": model, "dim": dim})
                unset: dict[str, str] = {}
            elif op == "remove":
                unset = {f"sources.{source_id}": ""}
            elif op == "reset":
                sets.update({"model": model or state.model, "dim": dim or state.dim})
                unset = {}
            else:
                raise ValueError(op)
            seq = state.seq + 1
            entry = {"seq": seq, "op": op, "source_id": source_id, "ingest_id": ingest_id, "at": utcnow()}
            sets.update({"seq": seq, "log": [*state.log[-(LOG_KEEP - 1) :], entry]})
            update: dict[str, Any] = {"$set": sets}
            if unset:
                update["$unset"] = unset
            if await self.states.compare_and_set(user_id, state.seq, update):
                return seq
        raise RuntimeError(f"index log of {user_id} is too contended")

    # -- chunks ------------------------------------------------------------------------------

    async def source_vectors(self, user_id: str, source_id: str, ingest_id: str) -> SourceRows:
        """(vids, vectors, passages) of one committed ingestion of a source."""
        return _collect(await self.chunks.of_ingestion(user_id, source_id, ingest_id))

    async def user_vectors(
        self, state: IndexState
    ) -> AsyncIterator[tuple[str, str, np.ndarray, np.ndarray, list[Any]]]:
        """Every committed source of a user: (source_id, ingest_id, vids, vectors, passages)."""
        for source_id, ingest_id in state.sources.items():
            vids, vectors, metas = await self.source_vectors(state.user_id, source_id, ingest_id)
            yield source_id, ingest_id, vids, vectors, metas


SourceRows = tuple[np.ndarray, np.ndarray, list[tuple[str, int, int | None, str]]]


def _collect(found: list[dict[str, Any]]) -> SourceRows:
    docs = sorted(found, key=lambda d: d["seq"])
    if not docs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), []
    vids = np.array([int(d["seq"]) for d in docs], dtype=np.int64)
    matrix = np.frombuffer(b"".join(bytes(d["vector"]) for d in docs), dtype=np.float32).reshape(len(docs), -1)
    metas = [(str(d["_id"]), int(d.get("ord", 0)), d.get("page"), str(d.get("text", ""))) for d in docs]
    return vids, matrix, metas
