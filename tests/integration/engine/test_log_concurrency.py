"""Concurrent ingestions of one user: every source gets its own vector ids and its log entry.

Two engine replicas' logs over one database, without any lock: the id allocation (one ``$inc``)
and the commit (a compare-and-set on ``seq``) are single-document updates, atomic on DocumentDB.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from collabry.db.client import new_id
from collabry.engine.index.state import IndexLog


async def test_concurrent_commits_keep_every_source_and_distinct_ids(db: Any) -> None:
    logs = [IndexLog(db), IndexLog(db)]  # two engine replicas' logs over the same database
    user = new_id()

    async def ingest(i: int) -> tuple[str, int, int]:
        log = logs[i % 2]
        source, ingest_id = new_id(), new_id()
        first = await log.allocate(user, 5)
        seq = await log.commit(user, "add", source, ingest_id, model="m", dim=8)
        return source, first, seq

    results = await asyncio.gather(*(ingest(i) for i in range(50)))
    firsts = sorted(first for _, first, _ in results)
    assert all(b - a >= 5 for a, b in itertools.pairwise(firsts)), firsts  # no overlapping id ranges
    assert sorted(seq for _, _, seq in results) == list(range(1, 51))
    state = await logs[0].state(user)
    assert set(state.sources) == {source for source, _, _ in results}
    assert state.seq == 50
