"""Daily metering counters (collection ``usage``): one document per user, UTC day and kind.

``{_id: "<user>:<YYYY-MM-DD>:<kind>", user_id, date, kind, used, seq?, updated_at}``; spent and
refunded by single conditional updates (``counters``), or, for counters metered in Redis
(``cache.quota``), written behind with ``persist``: the absolute value of a higher ``seq`` only.
The worker deletes past days by ``date``.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from . import counters
from .client import Database, utcnow
from .queries import Filter, query

COLLECTION = "usage"


@query(COLLECTION, example=("u1", "2026-12-04", "ai"))
def day_counter(user_id: str, date: str, kind: str) -> Filter:
    return {"_id": f"{user_id}:{date}:{kind}"}


@query(COLLECTION, example=("u1", "2026-12-04", "ai", 3))
def day_counter_behind(user_id: str, date: str, kind: str, seq: int) -> Filter:
    """The day's counter if it holds an older change than ``seq`` (or none from Redis yet)."""
    return {"_id": f"{user_id}:{date}:{kind}", "$or": [{"seq": {"$lt": seq}}, {"seq": {"$exists": False}}]}


@query(COLLECTION, example=("2026-12-01",))
def days_before(date: str) -> Filter:
    return {"date": {"$lt": date}}


class DailyUsage:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def take(self, user_id: str, date: str, kind: str, limit: int) -> bool:
        scope: dict[str, Any] = {"user_id": user_id, "date": date, "kind": kind}
        return await counters.take(self.coll, day_counter(user_id, date, kind), scope, limit)

    async def give_back(self, user_id: str, date: str, kind: str) -> bool:
        return await counters.give_back(self.coll, day_counter(user_id, date, kind))

    async def used(self, user_id: str, date: str, kind: str) -> int:
        return await counters.value(self.coll, day_counter(user_id, date, kind))

    async def snapshot(self, user_id: str, date: str, kind: str) -> tuple[int, int]:
        """(used, seq) as persisted; (0, 0) for a counter never written."""
        doc = await self.coll.find_one(day_counter(user_id, date, kind), {"used": 1, "seq": 1})
        return (int(doc.get("used", 0)), int(doc.get("seq", 0))) if doc else (0, 0)

    async def persist(self, user_id: str, date: str, kind: str, used: int, seq: int) -> bool:
        """Store ``used`` as of change ``seq`` unless a change as new is stored already; idempotent."""
        scope: dict[str, Any] = {"user_id": user_id, "date": date, "kind": kind}
        update = {"$set": {"used": used, "seq": seq, "updated_at": utcnow()}, "$setOnInsert": scope}
        try:
            result = await self.coll.update_one(day_counter_behind(user_id, date, kind, seq), update, upsert=True)
        except DuplicateKeyError:  # the document exists with this change or a newer one
            return False
        return result.modified_count == 1 or result.upserted_id is not None

    async def forget_before(self, date: str) -> int:
        """Remove the counters of days before ``date`` (the worker's cleanup)."""
        return (await self.coll.delete_many(days_before(date))).deleted_count
