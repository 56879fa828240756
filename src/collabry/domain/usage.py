"""Daily metering per user and UTC day: AI answers and uploads.

``consume`` is the only way a unit is spent: it either takes a unit (True) or writes nothing
(False), and concurrent callers can never take more than ``limit`` units between them: it is one
conditional update of the day's counter (``db.usage``). ``refund`` gives one back when the work it
paid for could not start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ..config import PlanLimits, Settings
from ..db.client import Database, utcnow
from ..db.usage import DailyUsage
from ..db.users import UserRepository

Kind = Literal["ai", "uploads"]
KINDS: tuple[Kind, ...] = ("ai", "uploads")


def today(now: datetime | None = None) -> str:
    return (now or utcnow()).astimezone(UTC).strftime("%Y-%m-%d")


async def consume(db: Database, user_id: str, kind: str, limit: int, *, date: str | None = None) -> bool:
    """Spend one unit of ``kind`` for today if fewer than ``limit`` are spent; True when spent."""
    return await DailyUsage(db).take(user_id, date or today(), kind, limit)


async def refund(db: Database, user_id: str, kind: str, *, date: str | None = None) -> bool:
    """Give back one unit spent today (the work it paid for did not happen)."""
    return await DailyUsage(db).give_back(user_id, date or today(), kind)


async def used(db: Database, user_id: str, kind: str, *, date: str | None = None) -> int:
    return await DailyUsage(db).used(user_id, date or today(), kind)


def daily_limit(limits: PlanLimits, kind: str) -> int:
    if kind == "ai":
        return limits.ai_per_day
    if kind == "uploads":
        return limits.uploads_per_day
    raise ValueError(f"unknown usage kind {kind!r}")


async def plan_of(db: Database, user_id: str) -> str:
    return await UserRepository(db).plan_of(user_id)


async def consume_for_plan(db: Database, settings: Settings, user_id: str, kind: str) -> bool:
    """``consume`` with the limit of the user's current plan (what POST /api/ai/chat calls)."""
    plan = settings.plan(await plan_of(db, user_id))
    return await consume(db, user_id, kind, daily_limit(plan.limits, kind))


@dataclass(frozen=True, slots=True)
class UsageReport:
    date: str
    plan: str
    ai: int
    uploads: int
    storage_bytes: int
    boards: int
    notebooks: int
    limits: PlanLimits


async def report(db: Database, settings: Settings, user_id: str) -> UsageReport:
    from . import quotas, storage  # storage and quotas import nothing from here

    plan = settings.plan(await plan_of(db, user_id))
    date = today()
    return UsageReport(
        date=date,
        plan=plan.id,
        ai=await used(db, user_id, "ai", date=date),
        uploads=await used(db, user_id, "uploads", date=date),
        storage_bytes=await storage.used_bytes(db, user_id),
        boards=await quotas.held(db, user_id, "boards"),
        notebooks=await quotas.held(db, user_id, "notebooks"),
        limits=plan.limits,
    )
