"""Bounded counters: one document per counter, spent and refunded by single conditional updates.

``take`` is the metering contract's "one conditional update": ``update_one({_id, used: {$lt:
limit}}, {$inc: {used: 1}})`` matches only while there is room, and the database applies it
atomically, so of any number of concurrent callers at most ``limit - used`` succeed (measured on
DocumentDB: 50 concurrent updates against a limit of 10 give exactly 10, every round). A refused
call writes nothing. A lowered limit (a downgrade mid-day) is respected because the filter
compares with the limit of the call.

The first unit of a counter creates its document with an upsert. Two first units at once both
try the insert and one gets a duplicate key; the document exists by then, so it retries as a
plain conditional update.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from .client import utcnow
from .queries import Filter


async def take(
    coll: AsyncCollection[dict[str, Any]], room: Filter, fields: dict[str, Any], limit: int,
    *, unless: Filter | None = None, record: dict[str, Any] | None = None,
) -> bool:
    """Add one to the counter selected by ``room`` (an ``_id`` filter) if it is below ``limit``.

    ``fields`` are stored when the document is created (its scope, for listing and cleanup);
    ``unless`` adds a condition and ``record`` more update operators, applied in the same update."""
    if limit <= 0:  # an upsert would create the counter at 1
        return False
    bounded = {**room, **(unless or {}), "used": {"$lt": limit}}
    step = {"$inc": {"used": 1}, "$set": {"updated_at": utcnow()}, **(record or {})}
    try:
        result = await coll.update_one(bounded, {**step, "$setOnInsert": fields}, upsert=True)
    except DuplicateKeyError:  # the counter exists: it is full, or another first unit created it
        result = await coll.update_one(bounded, step)
        return result.modified_count == 1
    return result.modified_count == 1 or result.upserted_id is not None


async def give_back(coll: AsyncCollection[dict[str, Any]], room: Filter) -> bool:
    """Subtract one if the counter is above zero; False when nothing was spent."""
    result = await coll.update_one({**room, "used": {"$gt": 0}}, {"$inc": {"used": -1}})
    return result.modified_count == 1


async def value(coll: AsyncCollection[dict[str, Any]], room: Filter) -> int:
    doc = await coll.find_one(room, {"used": 1})
    return int(doc.get("used", 0)) if doc else 0
