"""Data the worker tests start from, written straight into the collections the jobs read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from collabry.db.client import iso, new_id


def reminder_key(kind: str, task: dict[str, Any]) -> str:
    return f"{kind}:{task['_id']}:{iso(task['due_at'])}"


async def add_user(db: Any, *, plan: str = "free", email: str | None = None) -> dict[str, Any]:
    user_id = new_id()
    doc = {"_id": user_id, "email": email or f"{user_id}@example.com", "name": "Worker Test", "plan": plan,
           "role": "user", "password_hash": "x", "created_at": datetime(2029, 1, 1).astimezone()}
    await db["users"].insert_one(doc)
    return doc


async def add_task(db: Any, user_id: str, due_at: datetime, *, done: bool = False,
                   updated_at: datetime | None = None, title: str = "Read chapter 3") -> dict[str, Any]:
    changed = updated_at or due_at - timedelta(days=2)
    doc = {"_id": new_id(), "user_id": user_id, "title": title, "due_at": due_at, "done": done,
           "created_at": changed, "updated_at": changed}
    await db["planner_tasks"].insert_one(doc)
    return doc


async def seed_reminders(db: Any, now: datetime, *, users: int) -> dict[str, set[str]]:
    """Tasks around the minute slot of ``now``; returns the dedupe keys that slot must create."""
    slot = now.replace(second=0, microsecond=0)
    previous = slot - timedelta(minutes=1)
    expected: dict[str, set[str]] = {"task_overdue": set(), "task_due_soon": set()}
    for _ in range(users):
        user = await add_user(db)
        uid = user["_id"]
        for due in (previous + timedelta(seconds=1), slot):  # became overdue during this slot's minute
            expected["task_overdue"].add(reminder_key("task_overdue", await add_task(db, uid, due)))
        for due in (previous + timedelta(hours=1, seconds=30), slot + timedelta(hours=1)):  # came within the hour
            expected["task_due_soon"].add(reminder_key("task_due_soon", await add_task(db, uid, due)))
        # created during this minute, already due within the hour
        fresh = await add_task(db, uid, slot + timedelta(minutes=20), updated_at=previous + timedelta(seconds=10))
        expected["task_due_soon"].add(reminder_key("task_due_soon", fresh))
        # none of these is this slot's business
        await add_task(db, uid, previous)  # the previous slot's
        await add_task(db, uid, slot + timedelta(seconds=1))  # the next slot's
        await add_task(db, uid, slot + timedelta(minutes=30))  # due soon since long ago: an earlier slot's
        await add_task(db, uid, slot - timedelta(seconds=5), done=True)  # finished in time
    return expected


async def add_subscription(db: Any, user_id: str, *, plan: str, status: str, period_end: datetime,
                           cancel: bool = False) -> dict[str, Any]:
    doc = {"_id": user_id, "user_id": user_id, "plan": plan, "status": status,
           "current_period_start": period_end - timedelta(days=30), "current_period_end": period_end,
           "cancel_at_period_end": cancel, "checkout_id": None, "provider": "manual",
           "created_at": period_end - timedelta(days=30), "updated_at": period_end - timedelta(days=30)}
    await db["subscriptions"].insert_one(doc)
    return doc


async def add_boards(db: Any, owner_id: str, count: int, now: datetime) -> list[str]:
    """``count`` boards, the first one the most recently updated."""
    ids = []
    for i in range(count):
        board_id = new_id()
        await db["boards"].insert_one({"_id": board_id, "owner_id": owner_id, "title": f"Board {i}",
                                       "created_at": now - timedelta(days=60), "updated_at": now - timedelta(days=i),
                                       "deleted_at": None, "archived_at": None})
        ids.append(board_id)
    return ids


async def seed_subscriptions(db: Any, slot: datetime, *, each: int) -> dict[str, list[str]]:
    """Subscriptions in every state the lifecycle handles; returns user ids by expected outcome."""
    out: dict[str, list[str]] = {"renew": [], "expire": [], "cancel": [], "untouched": []}
    for _ in range(each):
        user = await add_user(db, plan="pro")
        await add_subscription(db, user["_id"], plan="pro", status="active", period_end=slot - timedelta(minutes=3))
        out["renew"].append(user["_id"])

        user = await add_user(db, plan="pro")
        await add_subscription(db, user["_id"], plan="pro", status="past_due",
                               period_end=slot - timedelta(days=3, minutes=1))
        await add_boards(db, user["_id"], 5, slot)
        out["expire"].append(user["_id"])

        user = await add_user(db, plan="starter")
        await add_subscription(db, user["_id"], plan="starter", status="active", period_end=slot - timedelta(hours=2),
                               cancel=True)
        out["cancel"].append(user["_id"])

        for status, end in (("active", slot + timedelta(minutes=1)), ("past_due", slot - timedelta(days=2))):
            user = await add_user(db, plan="pro")
            await add_subscription(db, user["_id"], plan="pro", status=status, period_end=end)
            out["untouched"].append(user["_id"])
    return out
