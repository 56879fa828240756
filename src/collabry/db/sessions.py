"""Login sessions (``auth_sessions``) and their rotating refresh tokens (``refresh_tokens``).

- ``auth_sessions`` ``{_id, user_id, created_at, last_used_at, expires_at, user_agent, ip,
  revoked_at, revoked_reason}``: one per login (a token family). Revocation sets ``revoked_at``
  with an update that matches only a live session, so exactly one of several concurrent revokers
  reports it; a rotation's refresh of ``last_used_at`` only matches a live session too, and an
  update writes only its own fields, so nothing can undo a revocation.
- ``refresh_tokens`` ``{_id: sha256(token), parent, family_id, user_id, created_at, expires_at,
  used_at}``: ``parent`` is unique (a partial index), so a token has at most one successor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .client import Database
from .queries import Filter, query
from .reads import all_of

SESSIONS = "auth_sessions"
TOKENS = "refresh_tokens"


@query(SESSIONS, example=("s1",))
def session(session_id: str) -> Filter:
    return {"_id": session_id}


@query(SESSIONS, example=("s1", "u1"))
def users_session(session_id: str, user_id: str) -> Filter:
    return {"_id": session_id, "user_id": user_id}


@query(SESSIONS, example=("s1",))
def live_session(session_id: str) -> Filter:
    return {"_id": session_id, "revoked_at": None}


@query(SESSIONS, example=("u1",))
def users_live_sessions(user_id: str) -> Filter:
    return {"user_id": user_id, "revoked_at": None}


@query(SESSIONS, example=("u1", datetime(2026, 12, 4)), sort=(("created_at", -1),))
def users_current_sessions(user_id: str, now: datetime) -> Filter:
    return {"user_id": user_id, "revoked_at": None, "expires_at": {"$gt": now}}


@query(SESSIONS, example=(datetime(2026, 11, 4),))
def sessions_expired_before(cutoff: datetime) -> Filter:
    return {"expires_at": {"$lt": cutoff}}


@query(TOKENS, example=("digest",))
def token(digest: str) -> Filter:
    return {"_id": digest}


@query(TOKENS, example=(datetime(2026, 12, 4),))
def tokens_expired_before(cutoff: datetime) -> Filter:
    return {"expires_at": {"$lt": cutoff}}


class LoginSessions:
    def __init__(self, db: Database) -> None:
        self.sessions = db[SESSIONS]
        self.tokens = db[TOKENS]

    async def insert_session(self, doc: dict[str, Any]) -> None:
        await self.sessions.insert_one(doc)

    async def insert_token(self, doc: dict[str, Any]) -> None:
        """DuplicateKeyError when the token's ``parent`` already has a successor."""
        await self.tokens.insert_one(doc)

    async def token(self, digest: str) -> dict[str, Any] | None:
        return await self.tokens.find_one(token(digest))

    async def mark_used(self, digest: str, at: datetime) -> None:
        await self.tokens.update_one(token(digest), {"$set": {"used_at": at}})

    async def live_session(self, session_id: str, now: datetime) -> dict[str, Any] | None:
        found = await self.sessions.find_one(live_session(session_id))
        return found if found is not None and found["expires_at"] > now else None

    async def session_of(self, session_id: str, user_id: str | None) -> dict[str, Any] | None:
        where = session(session_id) if user_id is None else users_session(session_id, user_id)
        return await self.sessions.find_one(where, {"user_id": 1})

    async def is_live(self, session_id: str) -> bool:
        return await self.sessions.find_one(live_session(session_id), {"_id": 1}) is not None

    async def touch(self, session_id: str, now: datetime, expires_at: datetime) -> None:
        await self.sessions.update_one(
            live_session(session_id), {"$set": {"last_used_at": now, "expires_at": expires_at}}
        )

    async def revoke(self, session_id: str, at: datetime, reason: str) -> bool:
        """True for the one call that revoked the session; False when it was already revoked."""
        result = await self.sessions.update_one(
            live_session(session_id), {"$set": {"revoked_at": at, "revoked_reason": reason}}
        )
        return result.modified_count == 1

    async def revoke_all(self, user_id: str, at: datetime, reason: str) -> int:
        result = await self.sessions.update_many(
            users_live_sessions(user_id), {"$set": {"revoked_at": at, "revoked_reason": reason}}
        )
        return result.modified_count

    async def current(self, user_id: str, now: datetime) -> list[dict[str, Any]]:
        """The user's sessions that are neither revoked nor expired, newest first."""
        where = users_current_sessions(user_id, now)
        return await all_of(self.sessions, where, sort=users_current_sessions.sort_list)

    async def purge(self, tokens_before: datetime, sessions_before: datetime) -> int:
        """Remove tokens and sessions that expired before the cutoffs; how many tokens went."""
        removed = await self.tokens.delete_many(tokens_expired_before(tokens_before))
        await self.sessions.delete_many(sessions_expired_before(sessions_before))
        return removed.deleted_count
