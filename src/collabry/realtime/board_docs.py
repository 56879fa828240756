"""Durable board documents: Yjs updates appended to the database, folded into snapshots.

The database is the only copy. Every accepted update is inserted into ``board_updates`` before the
client gets its acknowledgement; a board's document is its latest snapshot in ``board_snapshots``
merged with every update still in ``board_updates``. Yjs updates are commutative and idempotent, so
an update counted twice (folded into a snapshot but not yet deleted) changes nothing. That makes
compaction safe without transactions:

1. read the latest snapshot (version v), then a batch of the updates present now;
2. insert the merged snapshot as version v+1. The snapshot's ``_id`` is ``<board>:<v+1>``, so of
   two compactors that started from v exactly one insert succeeds. This claim by unique insert
   stays on DocumentDB by design, not as a workaround: snapshots are immutable versions, and
   the losing compactor must write nothing at all (a conditional update of one snapshot
   document would rewrite the whole state in place and lose the version history readers use);
3. the winner deletes exactly the updates it read (one inserted meanwhile is not among them and
   stays), then the older snapshots. The loser writes and deletes nothing.

Readers take the updates first and the snapshot second: a compaction in between can only have
moved updates into a newer snapshot, which the reader then sees.

Documents: see ``db.board_content``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pycrdt
import structlog

from ..db.board_content import BoardContent, snapshot_id
from ..db.client import Database, new_id, utcnow
from .yupdate import MalformedUpdate, inspect_update, state_vector

log = structlog.get_logger("collabry.boards")

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
    await BoardContent(db).append(
        {"_id": update_id, "board_id": board_id, "update": update, "user_id": user_id, "created_at": utcnow()}
    )
    return update_id


async def _updates(db: Database, board_id: str, limit: int = 0) -> list[dict[str, Any]]:
    return await BoardContent(db).pending(board_id, limit)


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
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(merged)
    have = state_vector(doc.get_state())
    shape = inspect_update(merged)
    if any(have.get(client, 0) < end for client, end in shape.ends.items()):
        return merged  # structs waiting for a missing dependency
    if any(have.get(client, 0) < clock + length for client, clock, length in shape.deletions):
        return merged  # deletions of structs not received yet
    return doc.get_update()


async def _latest_snapshot(db: Database, board_id: str) -> dict[str, Any] | None:
    return await BoardContent(db).latest_snapshot(board_id)


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
    content = BoardContent(db)
    won = await content.add_snapshot(
        {
            "_id": snapshot_id(board_id, version),
            "board_id": board_id,
            "version": version,
            "state": state,
            "updates_folded": folded,
            "created_at": utcnow(),
        }
    )
    if not won:
        return 0
    ids = [d["_id"] for d in updates]
    await content.drop_folded(board_id, ids, version)
    log.info("board_compacted", board_id=board_id, version=version, folded=len(ids), state_bytes=len(state))
    return len(ids)


async def delete_board_content(db: Database, board_id: str) -> None:
    """For board deletion: the document goes with the board."""
    await BoardContent(db).delete(board_id)
