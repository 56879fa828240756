"""Bytes stored per user, kept as an append-only ledger so concurrent uploads cannot overshoot.

Each change appends ``{_id: "<user>:<seq>", user_id, seq, total, delta, op}``; ``seq`` is the next
number after the latest entry, so of two writers that read the same latest entry only one can
insert (unique ``_id``): the other re-reads and decides again on the new total. ``op`` is unique
too (``reserve:<sourceId>`` / ``release:<sourceId>``), which makes a repeated release harmless.
This is a compare-and-swap built on the insert, the one write FerretDB 1.24 makes atomic.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from ..db.client import Database, utcnow
from .errors import Unavailable

ROUNDS = 200


async def _latest(db: Database, user_id: str) -> tuple[int, int]:
    doc = await db["storage_ledger"].find_one({"user_id": user_id}, {"seq": 1, "total": 1}, sort=[("seq", -1)])
    return (int(doc["seq"]), int(doc["total"])) if doc else (0, 0)


async def used_bytes(db: Database, user_id: str) -> int:
    return (await _latest(db, user_id))[1]


async def _append(db: Database, user_id: str, op: str, delta: int, limit: int | None) -> bool:
    ledger = db["storage_ledger"]
    for _ in range(ROUNDS):
        seq, total = await _latest(db, user_id)
        new_total = max(0, total + delta)
        if limit is not None and delta > 0 and new_total > limit:
            return False
        try:
            await ledger.insert_one(
                {"_id": f"{user_id}:{seq + 1:012d}", "user_id": user_id, "seq": seq + 1, "total": new_total,
                 "delta": delta, "op": op, "at": utcnow()}
            )
            return True
        except DuplicateKeyError:
            if await ledger.find_one({"op": op}, {"_id": 1}) is not None:
                return True  # this operation was already recorded
    raise Unavailable("storage accounting is busy, try again", code="busy", headers={"Retry-After": "1"})


async def reserve(db: Database, user_id: str, source_id: str, size: int, limit: int) -> bool:
    """Count ``size`` bytes for ``source_id`` if the total stays within ``limit``; False otherwise."""
    return await _append(db, user_id, f"reserve:{source_id}", size, limit)


async def release(db: Database, user_id: str, source_id: str, size: int) -> None:
    """Stop counting a source's bytes (idempotent per source)."""
    if await db["storage_ledger"].find_one({"op": f"reserve:{source_id}"}, {"_id": 1}) is None:
        return  # never counted
    await _append(db, user_id, f"release:{source_id}", -size, None)
