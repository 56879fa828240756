"""How many boards and notebooks each user holds against the plan (collection ``plan_counts``).

``{_id: "<user>:<kind>", user_id, kind, used, held: [resource ids], updated_at}``. A board or
notebook is counted from its creation (or restore) until it goes to the recycle bin. Taking a
place is one conditional update (``counters``) that also checks the resource is not counted yet
and records it, so a repeated restore counts once and concurrent creations cannot pass the plan.
"""

from __future__ import annotations

from . import counters
from .client import Database
from .queries import Filter, query

COLLECTION = "plan_counts"


@query(COLLECTION, example=("u1", "boards"))
def user_count(user_id: str, kind: str) -> Filter:
    return {"_id": f"{user_id}:{kind}"}


@query(COLLECTION, example=("u1", "boards", "b1"))
def holding(user_id: str, kind: str, resource_id: str) -> Filter:
    return {**user_count(user_id, kind), "held": resource_id}


class PlanCounts:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def take(self, user_id: str, kind: str, resource_id: str, limit: int) -> bool:
        """Count ``resource_id`` if the user holds fewer than ``limit``; True when it is counted
        (now or already)."""
        if await self.coll.find_one(holding(user_id, kind, resource_id), {"_id": 1}) is not None:
            return True
        return await counters.take(
            self.coll, user_count(user_id, kind), {"user_id": user_id, "kind": kind}, limit,
            unless={"held": {"$ne": resource_id}}, record={"$push": {"held": resource_id}},
        ) or await self.coll.find_one(holding(user_id, kind, resource_id), {"_id": 1}) is not None

    async def give_back(self, user_id: str, kind: str, resource_id: str) -> None:
        """Stop counting ``resource_id`` (idempotent: only an update that finds it there counts down)."""
        await self.coll.update_one(
            holding(user_id, kind, resource_id), {"$inc": {"used": -1}, "$pull": {"held": resource_id}}
        )

    async def held(self, user_id: str, kind: str) -> int:
        return await counters.value(self.coll, user_count(user_id, kind))
