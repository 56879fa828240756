"""Plan limits on how many boards and notebooks a user keeps.

Live ones count, archived boards included (a downgrade archives the boards over the new limit, so
making room means deleting some); the recycle bin does not.

A board or notebook is counted from creation (or restore) until it goes to the recycle bin; the
count is one conditional update (``db.plan_counts``), so concurrent creations cannot exceed the plan.
"""

from __future__ import annotations

from ..config import Settings
from ..db.client import Database
from ..db.plan_counts import PlanCounts
from ..errors import PlanLimit
from .policy import Actor


def limit_of(settings: Settings, plan_id: str, kind: str) -> int:
    limits = settings.plan(plan_id).limits
    return limits.boards if kind == "boards" else limits.notebooks


async def take(db: Database, settings: Settings, who: Actor, kind: str, resource_id: str) -> None:
    limit = limit_of(settings, who.plan, kind)
    if not await PlanCounts(db).take(who.user_id, kind, resource_id, limit):
        raise PlanLimit(f"your plan allows {limit} {kind}; delete one or upgrade",
                        details={"kind": kind, "limit": limit})


async def give_back(db: Database, user_id: str, kind: str, resource_id: str) -> None:
    await PlanCounts(db).give_back(user_id, kind, resource_id)


async def held(db: Database, user_id: str, kind: str) -> int:
    return await PlanCounts(db).held(user_id, kind)
