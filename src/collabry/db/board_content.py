"""The Yjs content of boards: updates (``board_updates``) and snapshots (``board_snapshots``).

- ``board_updates`` ``{_id, board_id, update: bytes, user_id, created_at}``; ``_id`` is an ObjectId
  string, so ordering by ``_id`` is insertion order.
- ``board_snapshots`` ``{_id: "<board_id>:<version, 12 digits>", board_id, version, state: bytes,
  updates_folded, created_at}``; snapshots are immutable, and a compactor claims version v+1 by
  inserting it (see ``realtime.board_docs``).
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from .client import Database
from .queries import Filter, query

UPDATES = "board_updates"
SNAPSHOTS = "board_snapshots"
DELETE_BATCH = 500


def snapshot_id(board_id: str, version: int) -> str:
    return f"{board_id}:{version:012d}"


@query(UPDATES, example=("b1",), sort=(("_id", 1),), limit=2000)
def board_updates(board_id: str) -> Filter:
    return {"board_id": board_id}


@query(UPDATES, example=(["u1", "u2"],))
def updates_among(update_ids: list[str]) -> Filter:
    return {"_id": {"$in": update_ids}}


@query(SNAPSHOTS, example=("b1",), sort=(("version", -1),), limit=1)
def board_snapshots(board_id: str) -> Filter:
    return {"board_id": board_id}


@query(SNAPSHOTS, example=("b1", 3))
def snapshots_before(board_id: str, version: int) -> Filter:
    return {"board_id": board_id, "version": {"$lt": version}}


class BoardContent:
    def __init__(self, db: Database) -> None:
        self.updates = db[UPDATES]
        self.snapshots = db[SNAPSHOTS]

    async def append(self, doc: dict[str, Any]) -> None:
        await self.updates.insert_one(doc)

    async def pending(self, board_id: str, limit: int = 0) -> list[dict[str, Any]]:
        """Stored updates (``_id`` and ``update``) in insertion order; at most ``limit`` (0: all)."""
        cursor = self.updates.find(board_updates(board_id), {"update": 1}, sort=board_updates.sort_list, limit=limit)
        return await cursor.to_list(None)

    async def latest_snapshot(self, board_id: str) -> dict[str, Any] | None:
        return await self.snapshots.find_one(board_snapshots(board_id), sort=board_snapshots.sort_list)

    async def add_snapshot(self, doc: dict[str, Any]) -> bool:
        """Insert the snapshot ``doc``; False when its version exists (another compactor won)."""
        try:
            await self.snapshots.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def drop_folded(self, board_id: str, update_ids: list[str], version: int) -> None:
        """Delete exactly the updates folded into snapshot ``version``, then the older snapshots."""
        for start in range(0, len(update_ids), DELETE_BATCH):
            await self.updates.delete_many(updates_among(update_ids[start : start + DELETE_BATCH]))
        await self.snapshots.delete_many(snapshots_before(board_id, version))

    async def delete(self, board_id: str) -> None:
        await self.updates.delete_many(board_updates(board_id))
        await self.snapshots.delete_many(board_snapshots(board_id))
