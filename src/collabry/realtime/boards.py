"""Durable board documents: Yjs updates appended to the database, folded into snapshots.

The database is the only copy. Every accepted update is inserted into ``board_updates`` before the
client gets its acknowledgement; a board's document is its latest snapshot in ``board_snapshots``
merged with every update still in ``board_updates``. Yjs updates are commutative and idempotent, so
an update counted twice (folded into a snapshot but not yet deleted) changes nothing. That makes
compaction safe without transactions:

1. read the latest snapshot (version v), then a batch of the updates present now;
2. insert the merged snapshot as version v+1. The snapshot's ``_id`` is ``<board>:<v+1>``, so of
   two compactors that started from v exactly one insert succeeds: a unique ``_id`` is the one
   write FerretDB 1.24 performs atomically (its conditional ``update_one`` is read-modify-write
   and lets several concurrent writers "win");
3. the winner deletes exactly the updates it read (one inserted meanwhile is not among them and
   stays), then the older snapshots. The loser writes and deletes nothing.

Readers take the updates first and the snapshot second: a compaction in between can only have
moved updates into a newer snapshot, which the reader then sees.

Documents:
``board_updates`` {_id, board_id, update: bytes, user_id, created_at}
``board_snapshots`` {_id: "<board_id>:<version, 12 digits>", board_id, version, state: bytes,
updates_folded (total over all versions), created_at}
"""

from __future__ import annotations

import asyncio
from typing import Any

import pycrdt
import structlog
from pymongo.errors import DuplicateKeyError

from ..db.client import Database, new_id, utcnow
from .yupdate import MalformedUpdate, inspect_update, state_vector

log = structlog.get_logger("collabry.boards")

UPDATES = "board_updates"
SNAPSHOTS = "board_snapshots"
MAX_UPDATE_BYTES = 256 * 1024
# A compaction folds at most this many updates; a larger backlog takes several rounds.
COMPACT_BATCH = 2000
EMPTY_UPDATE = b"\x00\x00"


class InvalidUpdate(ValueError):
    """The client sent bytes that are not an acceptable Yjs update."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_update(update: bytes, *, max_bytes: int = MAX_UPDATE_BYTES) -> None:
    """Refuse oversized, malformed or undecodable updates before anything stores them."""
    if len(update) > max_bytes:
        raise InvalidUpdate("too_large", f"a board update may be at most {max_bytes} bytes")
    try:
        inspect_update(update)
        pycrdt.Doc().apply_update(update)
    except MalformedUpdate as exc:
        raise InvalidUpdate("invalid_update", f"not a Yjs update: {exc}") from None
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
        raise
    except BaseException as exc:  # a Rust panic surfaces as a BaseException
        raise InvalidUpdate("invalid_update", f"not a Yjs update: {exc}") from None


async def append_update(db: Database, board_id: str, update: bytes, *, user_id: str) -> str:
    """Store one checked update durably; returns its id."""
    update_id = new_id()
    await db[UPDATES].insert_one(
        {"_id": update_id, "board_id": board_id, "update": update, "user_id": user_id, "created_at": utcnow()}
    )
    return update_id


async def _updates(db: Database, board_id: str, limit: int = 0) -> list[dict[str, Any]]:
    cursor = db[UPDATES].find({"board_id": board_id}, {"update": 1}).sort("_id", 1)
    if limit:
        cursor = cursor.limit(limit)
    return [doc async for doc in cursor]


def merge(updates: list[bytes]) -> bytes:
    """One update equivalent to all of ``updates``, garbage-collected when nothing is pending.

    A document rebuilt by the CRDT library drops structs whose dependencies are missing, so the
    compact form is only used when the rebuilt document holds everything the updates carry;
    otherwise the lossless merge is kept and the missing pieces can still arrive later.
    """
    parts = [u for u in updates if u and u != EMPTY_UPDATE]
    if not parts:
        return EMPTY_UPDATE
    merged = pycrdt.merge_updates(*parts) if len(parts) > 1 else parts[0]
    doc = pycrdt.Doc()
    doc.apply_update(merged)
    have = state_vector(doc.get_state())
    shape = inspect_update(merged)
    if any(have.get(client, 0) < end for client, end in shape.ends.items()):
        return merged  # structs waiting for a missing dependency
    if any(have.get(client, 0) < clock + length for client, clock, length in shape.deletions):
        return merged  # deletions of structs not received yet
    return doc.get_update()


async def _latest_snapshot(db: Database, board_id: str) -> dict[str, Any] | None:
    return await db[SNAPSHOTS].find_one({"board_id": board_id}, sort=[("version", -1)])


def snapshot_id(board_id: str, version: int) -> str:
    return f"{board_id}:{version:012d}"


async def load_board(db: Database, board_id: str) -> tuple[bytes, int]:
    """The board's document as one Yjs update, and how many updates are waiting for compaction."""
    updates = await _updates(db, board_id)
    snapshot = await _latest_snapshot(db, board_id)
    parts = ([snapshot["state"]] if snapshot else []) + [d["update"] for d in updates]
    state = await asyncio.to_thread(merge, parts) if len(parts) > 64 else merge(parts)
    return state, len(updates)


async def board_state(db: Database, board_id: str) -> bytes:
    """The board's whole document as one Yjs update (latest snapshot plus later updates)."""
    state, _ = await load_board(db, board_id)
    return state


async def compact(db: Database, board_id: str, *, batch: int = COMPACT_BATCH) -> int:
    """Fold stored updates into a new snapshot; returns how many were folded (0 if another won)."""
    snapshot = await _latest_snapshot(db, board_id)
    updates = await _updates(db, board_id, limit=batch)
    if not updates:
        return 0
    version = (snapshot["version"] if snapshot else 0) + 1
    parts = ([snapshot["state"]] if snapshot else []) + [d["update"] for d in updates]
    state = await asyncio.to_thread(merge, parts)
    folded = (snapshot.get("updates_folded", 0) if snapshot else 0) + len(updates)
    try:
        await db[SNAPSHOTS].insert_one(
            {
                "_id": snapshot_id(board_id, version),
                "board_id": board_id,
                "version": version,
                "state": state,
                "updates_folded": folded,
                "created_at": utcnow(),
            }
        )
    except DuplicateKeyError:
        return 0
    ids = [d["_id"] for d in updates]
    for start in range(0, len(ids), 500):
        await db[UPDATES].delete_many({"_id": {"$in": ids[start : start + 500]}})
    await db[SNAPSHOTS].delete_many({"board_id": board_id, "version": {"$lt": version}})
    log.info("board_compacted", board_id=board_id, version=version, folded=len(ids), state_bytes=len(state))
    return len(ids)


async def delete_board_content(db: Database, board_id: str) -> None:
    """For board deletion: the document goes with the board."""
    await db[UPDATES].delete_many({"board_id": board_id})
    await db[SNAPSHOTS].delete_many({"board_id": board_id})
