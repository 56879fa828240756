"""Notifications: the one service that creates them, stores them and pushes them live.

``notify`` inserts with a unique ``dedupe_key`` (a repeated key is a no-op, which is what makes
the worker's reminders exactly-once), then emits ``notification`` to the user's Socket.IO room
through the emitter. A failed push is logged and does not undo the stored notification: the
client sees it on its next list.

Collection ``notifications``:
``{_id, user_id, type, title, body, read, created_at, read_at, dedupe_key (unique)}``.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from ..db.client import Database, iso, new_id, utcnow
from ..db.notifications import Notifications
from . import policy

log = structlog.get_logger("collabry.notifications")

LIST_LIMIT = 50


class UserEmitter(Protocol):
    async def to_user(self, user_id: str, event: str, data: Any) -> None: ...


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "type": doc["type"],
        "title": doc["title"],
        "body": doc.get("body", ""),
        "read": bool(doc.get("read")),
        "createdAt": iso(doc.get("created_at")),
    }


async def notify(
    db: Database,
    emitter: UserEmitter | None,
    user_id: str,
    type: str,  # the field is called type in the API
    title: str,
    body: str,
    dedupe_key: str | None = None,
) -> dict[str, Any] | None:
    """Store and push a notification; None when ``dedupe_key`` was already used (nothing happens)."""
    notification_id = new_id()
    doc = {
        "_id": notification_id,
        "user_id": user_id,
        "type": type,
        "title": title,
        "body": body,
        "read": False,
        "created_at": utcnow(),
        "read_at": None,
        "dedupe_key": dedupe_key or f"id:{notification_id}",
    }
    if not await Notifications(db).insert_once(doc):
        return None
    if emitter is not None:
        payload = {k: v for k, v in public(doc).items() if k in {"id", "type", "title", "body"}}
        try:
            await emitter.to_user(user_id, "notification", payload)
        except Exception as exc:  # the stored notification stands; the client lists it later
            log.warning("notification_push_failed", user_id=user_id, type=type, error=str(exc))
    return doc


async def list_for(
    db: Database, user_id: str, *, unread_only: bool, limit: int = LIST_LIMIT
) -> tuple[list[dict[str, Any]], int]:
    store = Notifications(db)
    return await store.of_user(user_id, unread_only=unread_only, limit=limit), await store.unread_count(user_id)


async def mark_read(db: Database, user_id: str, notification_id: str) -> None:
    await policy.notification(db, notification_id, user_id)
    await Notifications(db).mark_read(notification_id, user_id, utcnow())


async def mark_all_read(db: Database, user_id: str) -> int:
    return await Notifications(db).mark_all_read(user_id, utcnow())
