"""Bounded counters built on unique inserts: the one write FerretDB 1.24 performs atomically.

FerretDB 1.24 (SQLite) runs ``update_one`` as read, modify, write without isolation: 50 concurrent
``{"n": {"$lt": 10}} / {"$inc": {"n": 1}}`` updates reported 50 successes and left ``n`` at 3
(tests/bench/bench_quota.py, docs/domain.md). A unique ``_id`` is enforced by the storage engine,
so a counter of ``limit`` units is kept as up to ``limit`` documents ``<scope>:1 .. <scope>:<limit>``:
taking a unit is one insert of a free number, and two requests can never insert the same number.
A refused request writes nothing, so it has consumed nothing.

FerretDB 1.24 also answers filters on fields other than ``_id`` by scanning the collection, so the
usual path touches documents by ``_id`` only: a hint document ``<scope>:top`` remembers the highest
number taken (raised with ``$max``; a lost raise only costs a few failed inserts later), and units
are inserted upwards from there. Only when the hint has reached the limit (the limit is reached,
or a refund left a hole below) is the scope counted with a query.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ..db.client import utcnow

ROUNDS = 4  # a slow-path round that found every free number taken re-reads
PROBES = 8  # refund: how far below the hint to look by _id before falling back to a query
UNITS = {"n": {"$gt": 0}}  # the hint document has n == 0


def slot_id(scope_key: str, n: int) -> str:
    return f"{scope_key}:{n}"


def hint_id(scope_key: str) -> str:
    return f"{scope_key}:top"


async def _insert(coll: AsyncCollection, scope_key: str, scope: dict[str, Any], n: int,
                  extra: dict[str, Any] | None) -> bool:
    try:
        await coll.insert_one({"_id": slot_id(scope_key, n), **scope, "n": n, "at": utcnow(), **(extra or {})})
    except DuplicateKeyError:
        return False
    return True


async def _raise_hint(coll: AsyncCollection, scope_key: str, scope: dict[str, Any], n: int) -> None:
    update = {"$max": {"top": n}, "$setOnInsert": {**scope, "n": 0}}
    try:
        await coll.update_one({"_id": hint_id(scope_key)}, update, upsert=True)
    except DuplicateKeyError:  # two first units at once: the other created it
        await coll.update_one({"_id": hint_id(scope_key)}, {"$max": {"top": n}})


async def _top(coll: AsyncCollection, scope_key: str) -> int:
    hint = await coll.find_one({"_id": hint_id(scope_key)}, {"top": 1})
    return int(hint["top"]) if hint else 0


async def claim(
    coll: AsyncCollection, scope_key: str, scope: dict[str, Any], limit: int, extra: dict[str, Any] | None = None
) -> int | None:
    """Take one unit of ``scope`` (at most ``limit`` held at once); the unit's number, or None if full."""
    if limit <= 0:
        return None
    for n in range(await _top(coll, scope_key) + 1, limit + 1):
        if await _insert(coll, scope_key, scope, n, extra):
            await _raise_hint(coll, scope_key, scope, n)
            return n
    for _ in range(ROUNDS):
        used = {int(doc["n"]) async for doc in coll.find({**scope, **UNITS}, {"n": 1})}
        if len(used) >= limit:  # also right after a downgrade left numbers above the new limit
            return None
        candidates: Iterable[int] = (n for n in range(1, limit + 1) if n not in used)
        for n in candidates:
            if await _insert(coll, scope_key, scope, n, extra):
                return n
    return None


async def release_highest(coll: AsyncCollection, scope_key: str, scope: dict[str, Any]) -> bool:
    """Give back one unit (the highest-numbered one found); False when none is held.

    ``delete_one`` by ``_id`` reports a deletion to exactly one of several concurrent callers, so two
    refunds never give back the same unit.
    """
    top = await _top(coll, scope_key)
    for n in range(top, max(0, top - PROBES), -1):
        if (await coll.delete_one({"_id": slot_id(scope_key, n)})).deleted_count:
            return True
    for _ in range(ROUNDS * 4):
        found = await coll.find_one({**scope, **UNITS}, {"_id": 1}, sort=[("n", -1)])
        if found is None:
            return False
        if (await coll.delete_one({"_id": found["_id"]})).deleted_count:
            return True
    return False


async def count(coll: AsyncCollection, scope: dict[str, Any]) -> int:
    return int(await coll.count_documents({**scope, **UNITS}))
