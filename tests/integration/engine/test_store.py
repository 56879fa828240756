"""IndexStore over the real database: lazy load, catch-up, LRU by memory, eviction snapshots, model checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabry.db.client import new_id
from collabry.engine.index.snapshot import snapshot_path
from collabry.engine.index.state import IndexLog, ModelMismatch
from collabry.engine.index.store import IndexStore

DIM = 8


async def add_source(log: IndexLog, user: str, rows: np.ndarray, model: str = "m") -> str:
    source, ingest = new_id(), new_id()
    first = await log.allocate(user, len(rows))
    await log.chunks.insert(
        [
            {
                "_id": new_id(),
                "user_id": user,
                "source_id": source,
                "ingest_id": ingest,
                "seq": first + i,
                "ord": i,
                "text": f"row {i}",
                "vector": rows[i].astype(np.float32).tobytes(),
                "model": model,
                "dim": DIM,
            }
            for i in range(len(rows))
        ]
    )
    await log.commit(user, "add", source, ingest, model=model, dim=DIM)
    return source


def rows(n: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return r / np.linalg.norm(r, axis=1, keepdims=True)


async def test_lru_keeps_within_budget_and_snapshots_evicted_indexes(db: Any, tmp_path: Path) -> None:
    log = IndexLog(db)
    users = [new_id() for _ in range(3)]
    sources = {u: await add_source(log, u, rows(500, n)) for n, u in enumerate(users)}
    store = IndexStore(log, tmp_path, model="m", dim=DIM, memory_budget=2**40)
    one_index = (await store.current(users[0])).memory_bytes()
    store.memory_budget = int(one_index * 2.5)  # room for two of the three
    query = rows(1, 99)[0]
    first = [[h.vid for h in await store.search(u, query, {sources[u]}, 5)] for u in users]

    assert store.cached(users[0]) is None  # least recently used, evicted
    assert store.cached(users[1]) is not None and store.cached(users[2]) is not None
    assert store.memory_bytes <= store.memory_budget
    assert snapshot_path(tmp_path, users[0]).exists()  # written on eviction (it was dirty)
    # Loading it back from its snapshot gives the same answer.
    assert [h.vid for h in await store.search(users[0], query, {sources[users[0]]}, 5)] == first[0]


async def test_a_cached_index_catches_up_with_other_replicas(db: Any, tmp_path: Path) -> None:
    log = IndexLog(db)
    user = new_id()
    a = await add_source(log, user, rows(20, 1))
    replica_1 = IndexStore(log, tmp_path / "one", model="m", dim=DIM)
    replica_2 = IndexStore(log, tmp_path / "two", model="m", dim=DIM)
    assert (await replica_1.current(user)).ntotal == 20
    b = await add_source(log, user, rows(30, 2))  # written "by" another replica
    idx = await replica_1.current(user)
    assert idx.ntotal == 50 and set(idx.ingests) == {a, b}
    await log.commit(user, "remove", a)
    await log.chunks.delete_source(user, a)
    assert (await replica_1.current(user)).ntotal == 30
    assert (await replica_2.current(user)).ntotal == 30


async def test_vectors_of_another_model_are_refused(db: Any, tmp_path: Path) -> None:
    log = IndexLog(db)
    user = new_id()
    await add_source(log, user, rows(5, 1), model="old-model")
    store = IndexStore(log, tmp_path, model="m", dim=DIM)
    with pytest.raises(ModelMismatch, match=f"collabry index rebuild --user {user}"):
        await store.current(user)
    with pytest.raises(ModelMismatch):
        await log.commit(user, "add", "s", "i", model="m", dim=DIM)


async def test_a_restored_database_resets_cached_indexes(db: Any, tmp_path: Path) -> None:
    log = IndexLog(db)
    user = new_id()
    a = await add_source(log, user, rows(10, 1))
    backup = await db.index_state.find_one({"_id": user})
    b = await add_source(log, user, rows(10, 2))
    store = IndexStore(log, tmp_path, model="m", dim=DIM)
    assert set((await store.current(user)).ingests) == {a, b}
    # Restore the earlier state: the log head goes back, b's chunks are gone.
    await db.index_state.replace_one({"_id": user}, backup)
    await db.chunks.delete_many({"source_id": b})
    idx = await store.current(user)
    assert set(idx.ingests) == {a} and idx.ntotal == 10 and idx.seq == backup["seq"]
