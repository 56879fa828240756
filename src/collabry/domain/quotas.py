"""Plan limits on how many boards and notebooks a user keeps.

Live ones count, archived boards included (a downgrade archives the boards over the new limit, so
making room means deleting some); the recycle bin does not.

Collection ``quota_slots``: ``{_id: "<user>:<kind>:<n>", user_id, kind, n, resource_id, at}``; a
board or notebook holds one slot from creation (or restore) until it goes to the recycle bin.
Slots are taken by unique insert (``slots``), so concurrent creations cannot exceed the plan.
"""

from __future__ import annotations

from ..config import Settings
from ..db.client import Database
from . import slots
from .errors import PlanLimit
from .policy import Actor


def limit_of(settings: Settings, plan_id: str, kind: str) -> int:
    limits = settings.plan(plan_id).limits
    return limits.boards if kind == "boards" else limits.notebooks


async def take(db: Database, settings: Settings, who: Actor, kind: str, resource_id: str) -> None:
    limit = limit_of(settings, who.plan, kind)
    scope = {"user_id": who.user_id, "kind": kind}
    if await db["quota_slots"].find_one({**scope, "resource_id": resource_id}, {"_id": 1}) is not None:
        return  # already counted (a repeated restore)
    taken = await slots.claim(db["quota_slots"], f"{who.user_id}:{kind}", scope, limit, {"resource_id": resource_id})
    if taken is None:
        raise PlanLimit(f"your plan allows {limit} {kind}; delete one or upgrade",
                        details={"kind": kind, "limit": limit})


async def give_back(db: Database, user_id: str, kind: str, resource_id: str) -> None:
    await db["quota_slots"].delete_many({"user_id": user_id, "kind": kind, "resource_id": resource_id})


async def held(db: Database, user_id: str, kind: str) -> int:
    return await slots.count(db["quota_slots"], {"user_id": user_id, "kind": kind})
