"""A whole account's documents: what ``GET /api/account/export`` hands out and what
``DELETE /api/account`` erases (the domain's ``accounts`` module orders the steps).

``OWNED`` lists every collection that holds a user's data, how to find it, and what export leaves
out. Board content, sources' files and the engines' indexes are the domain's business (boards
shared with others are handed over, not erased); everything here is found through an index (the
shapes are declared, so the query-plan test covers them).

- ``account_erasures`` ``{_id: user_id, requested_at, attempts, last_error}``: an erasure that has
  started and not finished. It holds nothing but the id; the worker's ``account_erasure`` job
  finishes what the request could not (a large account, an engine that was unreachable), and the
  record goes when everything else has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..cache.users import user_changed
from . import ai_sessions, billing, board_content, boards, sessions, sources, storage, users
from .client import Database
from .queries import Filter, query

ERASURES = "account_erasures"


@dataclass(frozen=True)
class Owned:
    collection: str
    where: Callable[[str], Filter]  # the user's documents in it, by user id
    private: tuple[str, ...] = ()  # fields an export leaves out (secrets, internal paths)
    exported: bool = True


@query("users", example=("u1",))
def the_user(user_id: str) -> Filter:
    return users.by_id(user_id)


@query(sessions.SESSIONS, example=("u1",))
def every_login(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(sessions.TOKENS, example=(["s1", "s2"],))
def tokens_of_families(family_ids: list[str]) -> Filter:
    return {"family_id": {"$in": family_ids}}


@query("password_resets", example=("u1",))
def reset_tokens(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(ai_sessions.SESSIONS, example=("u1",))
def every_chat(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(ai_sessions.MESSAGES, example=(["s1", "s2"], "u1"))
def messages_of_chats(session_ids: list[str], user_id: str) -> Filter:
    return {"session_id": {"$in": session_ids}, "user_id": user_id}


@query("notebooks", example=("u1",))
def every_notebook(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(sources.COLLECTION, example=(["n1", "n2"], "u1"))
def sources_of_notebooks(notebook_ids: list[str], user_id: str) -> Filter:
    return {"notebook_id": {"$in": notebook_ids}, "user_id": user_id}


@query("chunks", example=("u1",))
def every_chunk(user_id: str) -> Filter:
    return {"user_id": user_id}


@query("index_state", example=("u1",))
def index_log(user_id: str) -> Filter:
    return {"_id": user_id}


@query("notifications", example=("u1",))
def every_notification(user_id: str) -> Filter:
    return {"user_id": user_id}


@query("planner_tasks", example=("u1",))
def every_task(user_id: str) -> Filter:
    return {"user_id": user_id}


@query("usage", example=("u1",))
def daily_usage(user_id: str) -> Filter:
    return {"user_id": user_id}


@query("plan_counts", example=("u1",))
def plan_counts(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(storage.COLLECTION, example=("u1",))
def storage_total(user_id: str) -> Filter:
    return storage.user_total(user_id)


@query(billing.CHECKOUTS, example=("u1",))
def every_checkout(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(billing.SUBSCRIPTIONS, example=("u1",))
def the_subscription(user_id: str) -> Filter:
    return billing.subscription(user_id)


@query(billing.INVOICES, example=("u1",))
def every_invoice(user_id: str) -> Filter:
    return billing.users_invoices(user_id)


@query("coupon_redemptions", example=("u1",))
def coupon_uses(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(boards.BOARDS, example=("u1",))
def owned_boards(user_id: str) -> Filter:
    return {"owner_id": user_id}


@query(board_content.UPDATES, example=("b1", "u1"))
def board_edits_by(board_id: str, user_id: str) -> Filter:
    return {"board_id": board_id, "user_id": user_id}


@query(boards.MEMBERS, example=("b1", "u1"))
def members_added_by(board_id: str, user_id: str) -> Filter:
    return {"board_id": board_id, "added_by": user_id}


@query(ERASURES, example=("u1",))
def erasure(user_id: str) -> Filter:
    return {"_id": user_id}


@query(ERASURES, example=(), full_scan="the worker's erasure job visits the few unfinished erasures")
def every_erasure() -> Filter:
    return {}


# Found by user id. Messages (by chat), refresh tokens (by login), sources (by notebook) and boards
# need a second step and are handled by the methods below; invoices are kept without the user.
OWNED: tuple[Owned, ...] = (
    Owned("users", the_user, private=("password_hash",)),
    Owned(sessions.SESSIONS, every_login),
    Owned("password_resets", reset_tokens, exported=False),
    Owned(ai_sessions.SESSIONS, every_chat),
    Owned("notebooks", every_notebook),
    Owned("chunks", every_chunk, exported=False),  # the text is in the sources, the vectors derive from it
    Owned("index_state", index_log, exported=False),
    Owned("notifications", every_notification),
    Owned("planner_tasks", every_task),
    Owned("usage", daily_usage),
    Owned("plan_counts", plan_counts),
    Owned(storage.COLLECTION, storage_total),
    Owned(billing.CHECKOUTS, every_checkout, private=("key",)),
    Owned(billing.SUBSCRIPTIONS, the_subscription),
    Owned("coupon_redemptions", coupon_uses),
)


class AccountData:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading -----------------------------------------------------------------------------

    async def chat_ids(self, user_id: str) -> list[str]:
        return [d["_id"] async for d in self.db[ai_sessions.SESSIONS].find(every_chat(user_id), {"_id": 1})]

    async def notebook_ids(self, user_id: str) -> list[str]:
        return [d["_id"] async for d in self.db["notebooks"].find(every_notebook(user_id), {"_id": 1})]

    async def sources(self, user_id: str) -> list[dict[str, Any]]:
        """Every source of every notebook of the user, live or in the recycle bin."""
        notebook_ids = await self.notebook_ids(user_id)
        if not notebook_ids:
            return []
        return await self.db[sources.COLLECTION].find(sources_of_notebooks(notebook_ids, user_id)).to_list(None)

    async def owned_boards(self, user_id: str) -> list[dict[str, Any]]:
        return await self.db[boards.BOARDS].find(owned_boards(user_id)).to_list(None)

    async def memberships(self, user_id: str) -> list[dict[str, Any]]:
        return await self.db[boards.MEMBERS].find(boards.users_memberships(user_id)).to_list(None)

    async def export(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every exported document of the user by collection, private fields left out."""
        out: dict[str, list[dict[str, Any]]] = {}
        for owned in OWNED:
            if owned.exported:
                hidden = {field: 0 for field in owned.private}
                out[owned.collection] = await self.db[owned.collection].find(
                    owned.where(user_id), hidden or None
                ).to_list(None)
        chats = await self.chat_ids(user_id)
        out[ai_sessions.MESSAGES] = (
            await self.db[ai_sessions.MESSAGES].find(messages_of_chats(chats, user_id)).to_list(None) if chats else []
        )
        out[sources.COLLECTION] = [
            {k: v for k, v in doc.items() if k not in ("file", "ingest_id")} for doc in await self.sources(user_id)
        ]
        out[billing.INVOICES] = await self.db[billing.INVOICES].find(every_invoice(user_id)).to_list(None)
        out[boards.MEMBERS] = await self.memberships(user_id)
        return out

    # -- erasing -----------------------------------------------------------------------------

    async def start_erasure(self, user_id: str, at: datetime) -> None:
        await self.db[ERASURES].update_one(
            erasure(user_id), {"$setOnInsert": {"requested_at": at}, "$inc": {"attempts": 1}}, upsert=True
        )

    async def erasure_failed(self, user_id: str, error: str) -> None:
        await self.db[ERASURES].update_one(erasure(user_id), {"$set": {"last_error": error}})

    async def finish_erasure(self, user_id: str) -> None:
        await self.db[ERASURES].delete_one(erasure(user_id))

    async def pending_erasures(self) -> list[str]:
        return [d["_id"] async for d in self.db[ERASURES].find(every_erasure(), {"_id": 1})]

    async def is_being_erased(self, user_id: str) -> bool:
        return await self.db[ERASURES].find_one(erasure(user_id), {"_id": 1}) is not None

    async def leave_board(self, board_id: str, user_id: str) -> None:
        await self.db[boards.MEMBERS].delete_one(boards.membership(board_id, user_id))

    async def hand_over_board(self, board_id: str, old_owner_id: str, new_owner_id: str, at: datetime) -> None:
        """The board goes to ``new_owner_id``, whose member row it replaces (owners have none); the
        other members' rows no longer say who added them."""
        await self.db[boards.BOARDS].update_one(
            boards.board(board_id), {"$set": {"owner_id": new_owner_id, "updated_at": at}}
        )
        await self.db[boards.MEMBERS].delete_one(boards.membership(board_id, new_owner_id))
        await self.db[boards.MEMBERS].update_many(
            members_added_by(board_id, old_owner_id), {"$set": {"added_by": None}}
        )

    async def unsign_board_edits(self, board_id: str, user_id: str) -> int:
        """The user's edits stay in a board others keep, no longer attributed to them."""
        result = await self.db[board_content.UPDATES].update_many(
            board_edits_by(board_id, user_id), {"$set": {"user_id": None}}
        )
        return result.modified_count

    async def erase_documents(self, user_id: str, at: datetime) -> dict[str, int]:
        """Delete the user's documents (board content and files are the caller's, before this);
        invoices stay, for the operator's accounts, without the user id. Idempotent."""
        counts: dict[str, int] = {}
        # The account goes first: from then on nobody can sign in with it and its email is free; a
        # retry finds the rest by the user id (the found-through steps before their parents).
        gone = await self.db["users"].delete_one(the_user(user_id))
        counts["users"] = gone.deleted_count
        await user_changed(user_id)  # the user cache (/me) drops its copy (cache/users.py)
        chats = await self.chat_ids(user_id)
        if chats:
            result = await self.db[ai_sessions.MESSAGES].delete_many(messages_of_chats(chats, user_id))
            counts[ai_sessions.MESSAGES] = result.deleted_count
        logins = [d["_id"] async for d in self.db[sessions.SESSIONS].find(every_login(user_id), {"_id": 1})]
        if logins:
            result = await self.db[sessions.TOKENS].delete_many(tokens_of_families(logins))
            counts[sessions.TOKENS] = result.deleted_count
        notebook_ids = await self.notebook_ids(user_id)
        if notebook_ids:
            result = await self.db[sources.COLLECTION].delete_many(sources_of_notebooks(notebook_ids, user_id))
            counts[sources.COLLECTION] = result.deleted_count
        result = await self.db[boards.MEMBERS].delete_many(boards.users_memberships(user_id))
        counts[boards.MEMBERS] = result.deleted_count
        invoices = await self.db[billing.INVOICES].update_many(
            every_invoice(user_id), {"$set": {"user_id": None, "erased_at": at}}
        )
        counts[billing.INVOICES] = invoices.modified_count
        for owned in OWNED:
            if owned.collection == "users":
                continue  # went first
            result = await self.db[owned.collection].delete_many(owned.where(user_id))
            counts[owned.collection] = result.deleted_count
        return {name: n for name, n in counts.items() if n}
