"""AI chat sessions (``ai_sessions``) and their messages (``ai_messages``).

The engine writes both (a session when a chat starts, the question, then the answer when it is
done); the gateway lists, reads and deletes them for ``/api/ai/sessions``. Both go through this
module, so the two processes agree on one shape:

- ``ai_sessions`` ``{_id, user_id, notebook_id, title, created_at, updated_at}``
- ``ai_messages`` ``{_id, session_id, user_id, role: user|assistant, content, sources: [citation],
  stream_id, finish_reason (assistant only), created_at}``; a citation is
  ``{source_id, title, chunk_id, score, text, page (PDFs)}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict

from .client import Database
from .queries import Filter, query
from .reads import all_of


class Citation(TypedDict):
    """A passage an answer drew on, as stored with the message."""

    source_id: str
    title: str
    chunk_id: str
    score: float
    text: str
    page: NotRequired[int]


SESSIONS = "ai_sessions"
MESSAGES = "ai_messages"
LIST_LIMIT = 200
MESSAGES_LIMIT = 1000


@query(SESSIONS, example=("s1",))
def session(session_id: str) -> Filter:
    return {"_id": session_id}


@query(SESSIONS, example=("s1", "u1"))
def users_session(session_id: str, user_id: str) -> Filter:
    return {"_id": session_id, "user_id": user_id}


@query(SESSIONS, example=("u1",), sort=(("updated_at", -1),), limit=LIST_LIMIT)
def users_sessions(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(MESSAGES, example=("s1", "u1"), sort=(("created_at", 1),), limit=MESSAGES_LIMIT)
def session_messages(session_id: str, user_id: str) -> Filter:
    return {"session_id": session_id, "user_id": user_id}


@query(MESSAGES, example=("s1", "u1"), sort=(("created_at", -1),), limit=50)
def latest_session_messages(session_id: str, user_id: str) -> Filter:
    return session_messages(session_id, user_id)


class ChatSessions:
    def __init__(self, db: Database) -> None:
        self.sessions = db[SESSIONS]
        self.messages = db[MESSAGES]

    async def create(self, session_id: str, user_id: str, notebook_id: str | None, title: str, now: datetime) -> None:
        await self.sessions.insert_one(
            {"_id": session_id, "user_id": user_id, "notebook_id": notebook_id, "title": title,
             "created_at": now, "updated_at": now}
        )

    async def get(self, session_id: str, user_id: str) -> dict[str, Any] | None:
        """The session if it is ``user_id``'s."""
        return await self.sessions.find_one(users_session(session_id, user_id))

    async def recent(self, user_id: str) -> list[dict[str, Any]]:
        """The user's sessions, most recently used first (at most ``LIST_LIMIT``)."""
        return await all_of(self.sessions, users_sessions(user_id), sort=users_sessions.sort_list, at_most=LIST_LIMIT)

    async def add_message(
        self, message_id: str, session_id: str, user_id: str, role: str, content: str, *,
        sources: list[Citation], stream_id: str, at: datetime, finish_reason: str | None = None,
    ) -> None:
        doc: dict[str, Any] = {"_id": message_id, "session_id": session_id, "user_id": user_id, "role": role,
                               "content": content, "sources": sources, "stream_id": stream_id, "created_at": at}
        if finish_reason is not None:
            doc["finish_reason"] = finish_reason
        await self.messages.insert_one(doc)

    async def touch(self, session_id: str, at: datetime) -> None:
        await self.sessions.update_one(session(session_id), {"$set": {"updated_at": at}})

    async def messages_of(self, session_id: str, user_id: str) -> list[dict[str, Any]]:
        """A session's messages in order (at most ``MESSAGES_LIMIT``)."""
        where = session_messages(session_id, user_id)
        return await all_of(self.messages, where, sort=session_messages.sort_list, at_most=MESSAGES_LIMIT)

    async def latest_messages(self, session_id: str, user_id: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` messages (role and content), oldest first."""
        where = latest_session_messages(session_id, user_id)
        latest = await all_of(
            self.messages, where, sort=latest_session_messages.sort_list,
            projection={"role": 1, "content": 1, "stream_id": 1}, at_most=count,
        )  # fmt: skip
        return latest[::-1]

    async def delete(self, session_id: str, user_id: str) -> None:
        await self.messages.delete_many(session_messages(session_id, user_id))
        await self.sessions.delete_one(users_session(session_id, user_id))
