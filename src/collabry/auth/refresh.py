"""Rotating refresh tokens grouped in families (one family = one login = one session).

Only a SHA-256 of each token is stored. Each token can be used once: using it issues the next one
in the family. Presenting a used token again means it was stolen or replayed, so the whole family
is revoked, including the newest token.

"Used once" is enforced by a unique index on each token's ``parent`` (the digest of the token it
replaced), not by a conditional update: FerretDB 1.24 does not apply filtered updates atomically
under concurrency, while a unique insert has exactly one winner on every MongoDB-wire server.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from pymongo.errors import DuplicateKeyError

from ..db.client import Database, new_id, utcnow


class RefreshError(Exception):
    code = "unauthorized"


class TokenReused(RefreshError):
    code = "token_reused"

    def __init__(self, user_id: str) -> None:
        super().__init__("refresh token reused")
        self.user_id = user_id


@dataclass(frozen=True, slots=True)
class Rotation:
    user_id: str
    session_id: str
    refresh_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokenStore:
    def __init__(self, db: Database, ttl_seconds: int) -> None:
        self.tokens = db["refresh_tokens"]
        self.sessions = db["auth_sessions"]
        self.ttl = timedelta(seconds=ttl_seconds)

    async def _issue(self, user_id: str, session_id: str, parent: str) -> str:
        """Insert the next token of a family; DuplicateKeyError if ``parent`` already has a child."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        await self.tokens.insert_one(
            {
                "_id": _digest(token),
                "parent": parent,
                "family_id": session_id,
                "user_id": user_id,
                "created_at": now,
                "expires_at": now + self.ttl,
                "used_at": None,
            }
        )
        return token

    async def start(self, user_id: str, *, user_agent: str, ip: str) -> Rotation:
        now = utcnow()
        session_id = new_id()
        await self.sessions.insert_one(
            {
                "_id": session_id,
                "user_id": user_id,
                "created_at": now,
                "last_used_at": now,
                "expires_at": now + self.ttl,
                "user_agent": user_agent[:300],
                "ip": ip,
                "revoked_at": None,
            }
        )
        return Rotation(user_id, session_id, await self._issue(user_id, session_id, parent=f"root:{session_id}"))

    async def rotate(self, token: str) -> Rotation:
        now = utcnow()
        digest = _digest(token)
        doc = await self.tokens.find_one({"_id": digest})
        if doc is None:
            raise RefreshError("unknown refresh token")
        if doc.get("used_at") is not None:
            await self._reused(doc)
        if doc["expires_at"] <= now:
            raise RefreshError("refresh token expired")
        session = await self.sessions.find_one(
            {"_id": doc["family_id"], "revoked_at": None, "expires_at": {"$gt": now}}
        )
        if session is None:
            raise RefreshError("session revoked")
        try:
            new_token = await self._issue(doc["user_id"], doc["family_id"], parent=digest)
        except DuplicateKeyError:
            await self._reused(doc)  # a concurrent use of the same token won the insert
        await self.tokens.update_one({"_id": digest}, {"$set": {"used_at": now}})
        await self.sessions.update_one(
            {"_id": doc["family_id"]}, {"$set": {"last_used_at": now, "expires_at": now + self.ttl}}
        )
        return Rotation(doc["user_id"], doc["family_id"], new_token)

    async def _reused(self, doc: dict[str, Any]) -> NoReturn:
        await self.revoke(doc["family_id"], reason="reuse")
        raise TokenReused(doc["user_id"])

    async def revoke(self, session_id: str, *, user_id: str | None = None, reason: str = "logout") -> bool:
        query: dict[str, Any] = {"_id": session_id, "revoked_at": None}
        if user_id is not None:
            query["user_id"] = user_id
        result = await self.sessions.update_one(query, {"$set": {"revoked_at": utcnow(), "revoked_reason": reason}})
        return result.modified_count == 1

    async def revoke_all(self, user_id: str) -> int:
        result = await self.sessions.update_many(
            {"user_id": user_id, "revoked_at": None},
            {"$set": {"revoked_at": utcnow(), "revoked_reason": "logout_all"}},
        )
        return result.modified_count

    async def is_active(self, session_id: str) -> bool:
        doc = await self.sessions.find_one({"_id": session_id, "revoked_at": None}, {"_id": 1})
        return doc is not None

    async def list_active(self, user_id: str) -> list[dict[str, Any]]:
        cursor = self.sessions.find({"user_id": user_id, "revoked_at": None, "expires_at": {"$gt": utcnow()}}).sort(
            "created_at", -1
        )
        return [doc async for doc in cursor]

    async def purge_expired(self) -> int:
        """Used by the worker's cleanup job."""
        now = utcnow()
        removed = await self.tokens.delete_many({"expires_at": {"$lt": now}})
        await self.sessions.delete_many({"expires_at": {"$lt": now - timedelta(days=30)}})
        return removed.deleted_count
