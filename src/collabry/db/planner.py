"""Planner tasks (collection ``planner_tasks``):
``{_id, user_id, title, due_at, done, created_at, updated_at}``; the worker's reminders read the
open ones by due time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .client import Database
from .queries import Filter, query
from .reads import all_of

COLLECTION = "planner_tasks"
LIST_LIMIT = 500


@query(COLLECTION, example=("t1", "u1"))
def users_task(task_id: str, user_id: str) -> Filter:
    return {"_id": task_id, "user_id": user_id}


@query(COLLECTION, example=("u1", None), sort=(("due_at", 1), ("_id", 1)), limit=LIST_LIMIT,
       variants=(("u1", False), ("u1", True)))
def users_tasks(user_id: str, done: bool | None) -> Filter:
    """The user's tasks; only open (``done=False``) or finished ones (``True``), or all (None)."""
    return {"user_id": user_id} if done is None else {"user_id": user_id, "done": done}


@query(COLLECTION, example=(datetime(2026, 12, 4, 11), datetime(2026, 12, 4, 12)), sort=(("due_at", 1), ("_id", 1)))
def open_due_between(after: datetime, until: datetime) -> Filter:
    return {"done": False, "due_at": {"$gt": after, "$lte": until}}


@query(
    COLLECTION, example=(datetime(2026, 12, 4, 12), datetime(2026, 12, 4, 13), datetime(2026, 12, 4, 11)),
    sort=(("due_at", 1), ("_id", 1)),
)
def open_due_changed(after: datetime, until: datetime, changed_after: datetime) -> Filter:
    """Open tasks due in (after, until] that were changed in (changed_after, after]."""
    return {"done": False, "due_at": {"$gt": after, "$lte": until}, "updated_at": {"$gt": changed_after, "$lte": after}}


class PlannerTasks:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def insert(self, doc: dict[str, Any]) -> None:
        await self.coll.insert_one(doc)

    async def get(self, task_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(users_task(task_id, user_id))

    async def of_user(self, user_id: str, done: bool | None, limit: int) -> list[dict[str, Any]]:
        where = users_tasks(user_id, done)
        return await all_of(self.coll, where, sort=users_tasks.sort_list, at_most=min(limit, LIST_LIMIT))

    async def open_due(self, after: datetime, until: datetime) -> list[dict[str, Any]]:
        where = open_due_between(after, until)
        return await self.coll.find(where, sort=open_due_between.sort_list).to_list(None)

    async def open_due_changed(self, after: datetime, until: datetime, changed_after: datetime) -> list[dict[str, Any]]:
        where = open_due_changed(after, until, changed_after)
        return await self.coll.find(where, sort=open_due_changed.sort_list).to_list(None)

    async def update(self, task_id: str, user_id: str, changes: dict[str, Any]) -> None:
        await self.coll.update_one(users_task(task_id, user_id), {"$set": changes})

    async def delete(self, task_id: str, user_id: str) -> None:
        await self.coll.delete_one(users_task(task_id, user_id))
