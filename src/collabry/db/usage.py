"""Daily metering counters (collection ``usage``): one document per user, UTC day and kind.

``{_id: "<user>:<YYYY-MM-DD>:<kind>", user_id, date, kind, used, seq?, updated_at}``; spent and
refunded by single conditional updates (``counters``), or, for counters metered in Redis
(``cache.quota``), written behind with ``persist``: the absolute value of a higher ``seq`` only.
The worker deletes past days by ``date``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from . import counters
from .client import Database, utcnow
from .queries import Filter, query

COLLECTION = "usage"
DUPLICATE_KEY = 11000


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
        return await self.persist_many([(user_id, date, kind, used, seq)]) == 1

    async def persist_many(self, values: Sequence[tuple[str, str, str, int, int]]) -> int:
        """``persist`` for many ``(user_id, date, kind, used, seq)`` in one database request;
        returns how many documents it changed."""
        if not values:
            return 0
        now = utcnow()
        updates = [
            UpdateOne(
                day_counter_behind(user_id, date, kind, seq),
                {
                    "$set": {"used": used, "seq": seq, "updated_at": now},
                    "$setOnInsert": {"user_id": user_id, "date": date, "kind": kind},
                },
                upsert=True,
            )
            for user_id, date, kind, used, seq in values
        ]
        try:
            result = await self.coll.bulk_write(updates, ordered=False)
        except BulkWriteError as exc:
            # A counter stored with this change or a newer one does not match its filter, and its
            # upsert then meets the existing document: a duplicate key, and nothing to write.
            if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                raise
            return int(exc.details.get("nModified", 0)) + int(exc.details.get("nUpserted", 0))
        return result.modified_count + result.upserted_count

    async def forget_before(self, date: str) -> int:
        """Remove the counters of days before ``date`` (the worker's cleanup)."""
        return (await self.coll.delete_many(days_before(date))).deleted_count
