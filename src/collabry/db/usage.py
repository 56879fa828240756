"""Daily metering counters (collection ``usage``): one document per user, UTC day and kind.

``{_id: "<user>:<YYYY-MM-DD>:<kind>", user_id, date, kind, used, updated_at}``; spent and refunded
by single conditional updates (``counters``). The worker deletes past days by ``date``.
"""

from __future__ import annotations

from typing import Any

from . import counters
from .client import Database
from .queries import Filter, query

COLLECTION = "usage"


@query(COLLECTION, example=("u1", "2026-12-04", "ai"))
def day_counter(user_id: str, date: str, kind: str) -> Filter:
    return {"_id": f"{user_id}:{date}:{kind}"}


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

    async def forget_before(self, date: str) -> int:
        """Remove the counters of days before ``date`` (the worker's cleanup)."""
        return (await self.coll.delete_many(days_before(date))).deleted_count
