"""Planner tasks with due dates; the worker's reminders read ``due_at`` and ``done``.

Collection ``planner_tasks``: ``{_id, user_id, title, due_at, done, created_at, updated_at}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..db.client import Database, bson_time, iso, new_id, utcnow
from ..db.planner import PlannerTasks
from . import policy

MAX_TASKS_LISTED = 500


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "title": doc["title"],
        "dueAt": iso(doc.get("due_at")),
        "done": bool(doc.get("done")),
        "createdAt": iso(doc.get("created_at")),
        "updatedAt": iso(doc.get("updated_at")),
    }


async def create(db: Database, user_id: str, title: str, due_at: datetime) -> dict[str, Any]:
    now = utcnow()
    doc = {"_id": new_id(), "user_id": user_id, "title": title, "due_at": bson_time(due_at), "done": False,
           "created_at": now, "updated_at": now}
    await PlannerTasks(db).insert(doc)
    return doc


async def list_for(db: Database, user_id: str, *, status: str = "all") -> list[dict[str, Any]]:
    done = {"open": False, "done": True}.get(status)
    return await PlannerTasks(db).of_user(user_id, done, MAX_TASKS_LISTED)


async def get(db: Database, user_id: str, task_id: str) -> dict[str, Any]:
    return await policy.task(db, task_id, user_id)


async def update(db: Database, user_id: str, task_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    doc = await policy.task(db, task_id, user_id)
    if changes:
        changes = {**changes, "updated_at": utcnow()}
        if isinstance(changes.get("due_at"), datetime):
            changes["due_at"] = bson_time(changes["due_at"])
        await PlannerTasks(db).update(task_id, user_id, changes)
        doc.update(changes)
    return doc


async def delete(db: Database, user_id: str, task_id: str) -> None:
    await policy.task(db, task_id, user_id)
    await PlannerTasks(db).delete(task_id, user_id)
