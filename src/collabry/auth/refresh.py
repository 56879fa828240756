"""Rotating refresh tokens grouped in families (one family = one login = one session).

Only a SHA-256 of each token is stored. Each token can be used once: using it issues the next one
in the family. Presenting a used token again means it was stolen or replayed, so the whole family
is revoked, including the newest token.

"Used once" is enforced by a unique index on each token's ``parent`` (the digest of the token it
replaced): of two concurrent uses of one token, exactly one inserts the successor, and the other
is treated as a reuse. A revocation is one conditional update of the session (``db.sessions``),
which reports it to exactly one caller; no other write can undo it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from pymongo.errors import DuplicateKeyError

from ..db.client import Database, new_id, utcnow
from ..db.sessions import LoginSessions


class RefreshError(Exception):
    code = "unauthorized"


class TokenReused(RefreshError):
    code = "token_reused"

    def __init__(self, user_id: str, session_id: str = "") -> None:
        super().__init__("refresh token reused")
        self.user_id = user_id
        self.session_id = session_id


@dataclass(frozen=True, slots=True)
class Rotation:
    user_id: str
    session_id: str
    refresh_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokenStore:
    def __init__(self, db: Database, ttl_seconds: int) -> None:
        self.store = LoginSessions(db)
        self.ttl = timedelta(seconds=ttl_seconds)

    async def _issue(self, user_id: str, session_id: str, parent: str) -> str:
        """Insert the next token of a family; DuplicateKeyError if ``parent`` already has a child."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        await self.store.insert_token(
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
        await self.store.insert_session(
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
        doc = await self.store.token(digest)
        if doc is None:
            raise RefreshError("unknown refresh token")
        if doc.get("used_at") is not None:
            await self._reused(doc)
        if doc["expires_at"] <= now:
            raise RefreshError("refresh token expired")
        if await self.store.live_session(doc["family_id"], now) is None:
            raise RefreshError("session revoked")
        try:
            new_token = await self._issue(doc["user_id"], doc["family_id"], parent=digest)
        except DuplicateKeyError:
            await self._reused(doc)  # a concurrent use of the same token won the insert
        await self.store.mark_used(digest, now)
        await self.store.touch(doc["family_id"], now, now + self.ttl)
        if not await self.is_active(doc["family_id"]):  # revoked while this rotation ran
            raise RefreshError("session revoked")
        return Rotation(doc["user_id"], doc["family_id"], new_token)

    async def _reused(self, doc: dict[str, Any]) -> NoReturn:
        await self.store.revoke(doc["family_id"], utcnow(), "reuse")
        raise TokenReused(doc["user_id"], doc["family_id"])

    async def revoke(self, session_id: str, *, user_id: str | None = None, reason: str = "logout") -> bool:
        """Revoke one session (of ``user_id`` when given); False if unknown or already revoked."""
        if await self.store.session_of(session_id, user_id) is None:
            return False
        return await self.store.revoke(session_id, utcnow(), reason)

    async def revoke_all(self, user_id: str) -> int:
        return await self.store.revoke_all(user_id, utcnow(), "logout_all")

    async def is_active(self, session_id: str) -> bool:
        return await self.store.is_live(session_id)

    async def list_active(self, user_id: str) -> list[dict[str, Any]]:
        return await self.store.current(user_id, utcnow())

    async def purge_expired(self) -> int:
        """Used by the worker's cleanup job."""
        now = utcnow()
        return await self.store.purge(now, now - timedelta(days=30))
