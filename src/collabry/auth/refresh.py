"""Rotating refresh tokens grouped in families (one family = one login = one session).

Only a SHA-256 of each token is stored. Each token can be used once: using it issues the next one
in the family. Presenting a used token again means it was stolen or replayed, so the whole family
is revoked, including the newest token.

"Used once" is enforced by a unique index on each token's ``parent`` (the digest of the token it
replaced), not by a conditional update: FerretDB 1.24 does not apply filtered updates atomically
under concurrency, while a unique insert has exactly one winner on every MongoDB-wire server.
For the same reason a revocation is its own document in ``auth_revocations`` (an insert), never
only a field of the session: a concurrent write of the session's ``last_used_at`` could put back
the old document and silently undo the revocation.
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
        self.revocations = db["auth_revocations"]
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
        session = await self.sessions.find_one({"_id": doc["family_id"], "expires_at": {"$gt": now}})
        if session is None or not await self.is_active(doc["family_id"]):
            raise RefreshError("session revoked")
        try:
            new_token = await self._issue(doc["user_id"], doc["family_id"], parent=digest)
        except DuplicateKeyError:
            await self._reused(doc)  # a concurrent use of the same token won the insert
        await self.tokens.update_one({"_id": digest}, {"$set": {"used_at": now}})
        await self.sessions.update_one(
            {"_id": doc["family_id"]}, {"$set": {"last_used_at": now, "expires_at": now + self.ttl}}
        )
        if not await self.is_active(doc["family_id"]):  # revoked while this rotation ran
            raise RefreshError("session revoked")
        return Rotation(doc["user_id"], doc["family_id"], new_token)

    async def _reused(self, doc: dict[str, Any]) -> NoReturn:
        await self.revoke(doc["family_id"], reason="reuse")
        raise TokenReused(doc["user_id"])

    async def revoke(self, session_id: str, *, user_id: str | None = None, reason: str = "logout") -> bool:
        """Revoke one session (of ``user_id`` when given); False if unknown or already revoked."""
        query: dict[str, Any] = {"_id": session_id}
        if user_id is not None:
            query["user_id"] = user_id
        session = await self.sessions.find_one(query, {"user_id": 1, "expires_at": 1})
        if session is None:
            return False
        return await self._record_revocation(session, reason)

    async def _record_revocation(self, session: dict[str, Any], reason: str) -> bool:
        now = utcnow()
        try:
            await self.revocations.insert_one(
                {
                    "_id": session["_id"],
                    "user_id": session["user_id"],
                    "reason": reason,
                    "at": now,
                    "expires_at": session.get("expires_at") or now + self.ttl,
                }
            )
        except DuplicateKeyError:
            return False
        # Shown in listings; the revocation document above is what every check relies on.
        await self.sessions.update_one({"_id": session["_id"]}, {"$set": {"revoked_at": now, "revoked_reason": reason}})
        return True

    async def revoke_all(self, user_id: str) -> int:
        count = 0
        async for session in self.sessions.find({"user_id": user_id}, {"user_id": 1, "expires_at": 1}):
            count += await self._record_revocation(session, "logout_all")
        return count

    async def is_active(self, session_id: str) -> bool:
        return await self.revocations.find_one({"_id": session_id}, {"_id": 1}) is None

    async def list_active(self, user_id: str) -> list[dict[str, Any]]:
        now = utcnow()
        sessions = [
            doc
            async for doc in self.sessions.find({"user_id": user_id, "expires_at": {"$gt": now}}).sort("created_at", -1)
        ]
        revoked = {
            doc["_id"]
            async for doc in self.revocations.find({"_id": {"$in": [d["_id"] for d in sessions]}}, {"_id": 1})
        }
        return [doc for doc in sessions if doc["_id"] not in revoked]

    async def purge_expired(self) -> int:
        """Used by the worker's cleanup job."""
        now = utcnow()
        removed = await self.tokens.delete_many({"expires_at": {"$lt": now}})
        await self.sessions.delete_many({"expires_at": {"$lt": now - timedelta(days=30)}})
        await self.revocations.delete_many({"expires_at": {"$lt": now - timedelta(days=30)}})
        return removed.deleted_count
