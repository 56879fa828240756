"""Notifications (collection ``notifications``):
``{_id, user_id, type, title, body, read, created_at, read_at, dedupe_key}``; ``dedupe_key`` is
unique, so a repeated notification (a retried job, a redelivered event) is stored once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from .client import Database
from .queries import Filter, query
from .reads import all_of, count

COLLECTION = "notifications"
LIST_LIMIT = 100


@query(COLLECTION, example=("x1", "u1"))
def users_notification(notification_id: str, user_id: str) -> Filter:
    return {"_id": notification_id, "user_id": user_id}


@query(COLLECTION, example=("u1", False), sort=(("created_at", -1), ("_id", -1)), limit=LIST_LIMIT,
       variants=(("u1", True),))
def users_notifications(user_id: str, unread_only: bool) -> Filter:
    return {"user_id": user_id, "read": False} if unread_only else {"user_id": user_id}


@query(COLLECTION, example=("u1",))
def users_unread(user_id: str) -> Filter:
    return {"user_id": user_id, "read": False}


@query(COLLECTION, example=(datetime(2026, 11, 4),))
def created_before(cutoff: datetime) -> Filter:
    return {"created_at": {"$lt": cutoff}}


class Notifications:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def insert_once(self, doc: dict[str, Any]) -> bool:
        """Store ``doc``; False when its ``dedupe_key`` is already stored."""
        try:
            await self.coll.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, notification_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(users_notification(notification_id, user_id))

    async def of_user(self, user_id: str, *, unread_only: bool, limit: int) -> list[dict[str, Any]]:
        where = users_notifications(user_id, unread_only)
        return await all_of(self.coll, where, sort=users_notifications.sort_list, at_most=limit)

    async def unread_count(self, user_id: str) -> int:
        return await count(self.coll, users_unread(user_id))

    async def mark_read(self, notification_id: str, user_id: str, at: datetime) -> None:
        await self.coll.update_one(
            {**users_notification(notification_id, user_id), "read": False}, {"$set": {"read": True, "read_at": at}}
        )

    async def mark_all_read(self, user_id: str, at: datetime) -> int:
        result = await self.coll.update_many(users_unread(user_id), {"$set": {"read": True, "read_at": at}})
        return int(result.modified_count)

    async def forget_before(self, cutoff: datetime) -> int:
        return (await self.coll.delete_many(created_before(cutoff))).deleted_count
