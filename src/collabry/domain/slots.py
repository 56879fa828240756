"""Bounded counters built on unique inserts: the one write FerretDB 1.24 performs atomically.

FerretDB 1.24 (SQLite) runs ``update_one`` as read, modify, write without isolation: 50 concurrent
``{"n": {"$lt": 10}} / {"$inc": {"n": 1}}`` updates reported 44 successes and left ``n == 9``
(docs/domain.md). A unique ``_id`` is enforced by the storage engine, so a counter of ``limit``
units is represented as up to ``limit`` documents ``<scope>:1 .. <scope>:<limit>``: taking a unit
is one insert of a free number, and two requests can never both insert the same number. Refusal
writes nothing, so a refused request has not consumed anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ..db.client import utcnow

# A round that found every free number taken re-reads; a few rounds settle any realistic contention.
ROUNDS = 4


def slot_id(scope_key: str, n: int) -> str:
    return f"{scope_key}:{n}"


async def claim(
    coll: AsyncCollection, scope_key: str, scope: dict[str, Any], limit: int, extra: dict[str, Any] | None = None
) -> int | None:
    """Take one unit of ``scope`` (at most ``limit`` held at once); the unit's number, or None if full."""
    if limit <= 0:
        return None
    for _ in range(ROUNDS):
        top = await coll.find_one(scope, {"n": 1}, sort=[("n", -1)])
        highest = int(top["n"]) if top else 0
        if highest < limit:
            # The usual case: numbers above the highest are free (a concurrent request may win one).
            candidates: Iterable[int] = range(highest + 1, limit + 1)
        else:
            # Numbers freed by a refund or a release leave holes below the highest.
            used = {int(doc["n"]) async for doc in coll.find(scope, {"n": 1})}
            if len(used) >= limit:
                return None
            candidates = (n for n in range(1, limit + 1) if n not in used)
        for n in candidates:
            try:
                await coll.insert_one({"_id": slot_id(scope_key, n), **scope, "n": n, "at": utcnow(), **(extra or {})})
            except DuplicateKeyError:
                continue
            return n
    return None


async def release_highest(coll: AsyncCollection, scope: dict[str, Any]) -> bool:
    """Give back one unit (the highest-numbered); False when none is held.

    ``delete_one`` by ``_id`` reports a deletion to exactly one of several concurrent callers, so two
    refunds never give back the same unit.
    """
    for _ in range(ROUNDS * 4):
        top = await coll.find_one(scope, {"_id": 1}, sort=[("n", -1)])
        if top is None:
            return False
        result = await coll.delete_one({"_id": top["_id"]})
        if result.deleted_count:
            return True
    return False


async def count(coll: AsyncCollection, scope: dict[str, Any]) -> int:
    return int(await coll.count_documents(scope))
