"""Password-reset tokens (``password_resets``): ``{_id: sha256 of the token, user_id, created_at,
expires_at, used_at}``. Only the hash is stored, so a copy of the database cannot reset anyone's
password; taking a token is one conditional update (unused and unexpired), so it works once.
A new request replaces the account's earlier tokens and a reset removes them all, so an account
holds at most one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from .client import Database, utcnow
from .queries import Filter, query

PASSWORD_RESETS = "password_resets"  # noqa: S105 - a collection name


@query(PASSWORD_RESETS, example=("0" * 64, datetime(2026, 1, 1)))
def usable(token_hash: str, now: datetime) -> Filter:
    return {"_id": token_hash, "used_at": None, "expires_at": {"$gt": now}}


@query(PASSWORD_RESETS, example=("u1",))
def of_user(user_id: str) -> Filter:
    return {"user_id": user_id}


class PasswordResetRepository:
    def __init__(self, db: Database) -> None:
        self.resets = db[PASSWORD_RESETS]

    async def create(self, token_hash: str, user_id: str, ttl: int) -> None:
        now = utcnow()
        expires = now + timedelta(seconds=ttl)
        doc = {"_id": token_hash, "user_id": user_id, "created_at": now, "expires_at": expires, "used_at": None}
        await self.resets.insert_one(doc)

    async def take(self, token_hash: str) -> dict[str, Any] | None:
        """Mark the token used and return it, or None when it is unknown, used or expired."""
        now = utcnow()
        return await self.resets.find_one_and_update(
            usable(token_hash, now), {"$set": {"used_at": now}}, return_document=ReturnDocument.AFTER
        )

    async def forget_user(self, user_id: str) -> int:
        """Every token of a user (a reset done, or the account deleted)."""
        return (await self.resets.delete_many(of_user(user_id))).deleted_count
