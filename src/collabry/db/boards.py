"""Boards (``boards``) and their members (``board_members``).

- ``boards`` ``{_id, owner_id, title, created_at, updated_at, deleted_at, archived_at}``;
  ``deleted_at`` set: in the owner's recycle bin; ``archived_at`` set: read-only after a downgrade.
- ``board_members`` ``{_id: "<boardId>:<userId>", board_id, user_id, role: editor|viewer, added_by,
  created_at}``; the owner is ``boards.owner_id`` and has no member row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from .client import Database
from .queries import Filter, query
from .reads import all_of

BOARDS = "boards"
MEMBERS = "board_members"


def member_id(board_id: str, user_id: str) -> str:
    return f"{board_id}:{user_id}"


@query(BOARDS, example=("b1",))
def board(board_id: str) -> Filter:
    return {"_id": board_id}


@query(BOARDS, example=("b1",))
def live_board(board_id: str) -> Filter:
    return {"_id": board_id, "deleted_at": None}


@query(BOARDS, example=("b1", "u1"))
def owners_binned_board(board_id: str, owner_id: str) -> Filter:
    return {"_id": board_id, "owner_id": owner_id, "deleted_at": {"$ne": None}}


@query(BOARDS, example=("u1", ["b1", "b2"]), sort=(("updated_at", -1), ("_id", -1)), variants=(("u1", []),))
def visible_boards(user_id: str, member_of: list[str]) -> Filter:
    """Live boards the user owns or is a member of."""
    either: list[Filter] = [{"owner_id": user_id}]
    if member_of:
        either.append({"_id": {"$in": member_of}})
    return {"deleted_at": None, "$or": either}


@query(BOARDS, example=("u1", datetime(2026, 11, 4)), sort=(("deleted_at", -1),))
def owners_bin(owner_id: str, since: datetime) -> Filter:
    return {"owner_id": owner_id, "deleted_at": {"$gt": since}}


@query(BOARDS, example=(datetime(2026, 11, 4),))
def binned_before(cutoff: datetime) -> Filter:
    return {"deleted_at": {"$ne": None, "$lte": cutoff}}


@query(BOARDS, example=("u1",), sort=(("updated_at", -1), ("_id", -1)))
def owners_writable_boards(owner_id: str) -> Filter:
    return {"owner_id": owner_id, "deleted_at": None, "archived_at": None}


@query(BOARDS, example=("u1",))
def owners_archived_boards(owner_id: str) -> Filter:
    return {"owner_id": owner_id, "archived_at": {"$ne": None}}


@query(BOARDS, example=(["b1", "b2"],))
def unarchived_among(board_ids: list[str]) -> Filter:
    return {"_id": {"$in": board_ids}, "archived_at": None}


@query(MEMBERS, example=("b1", "u1"))
def membership(board_id: str, user_id: str) -> Filter:
    return {"_id": member_id(board_id, user_id)}


@query(MEMBERS, example=("u1",))
def users_memberships(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(MEMBERS, example=("b1",), sort=(("created_at", 1),))
def boards_members(board_id: str) -> Filter:
    return {"board_id": board_id}


class Boards:
    def __init__(self, db: Database) -> None:
        self.boards = db[BOARDS]
        self.members = db[MEMBERS]

    async def insert(self, doc: dict[str, Any]) -> None:
        await self.boards.insert_one(doc)

    async def live(self, board_id: str) -> dict[str, Any] | None:
        return await self.boards.find_one(live_board(board_id))

    async def binned(self, board_id: str, owner_id: str) -> dict[str, Any] | None:
        return await self.boards.find_one(owners_binned_board(board_id, owner_id))

    async def visible_to(self, user_id: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The live boards the user owns or belongs to, most recently updated first, and the user's
        member role by board id."""
        roles = {m["board_id"]: m["role"] async for m in self.members.find(users_memberships(user_id),
                                                                            {"board_id": 1, "role": 1})}
        where = visible_boards(user_id, list(roles))
        return await all_of(self.boards, where, sort=visible_boards.sort_list), roles

    async def bin_of(self, owner_id: str, since: datetime) -> list[dict[str, Any]]:
        return await all_of(self.boards, owners_bin(owner_id, since), sort=owners_bin.sort_list)

    async def binned_before(self, cutoff: datetime) -> list[dict[str, Any]]:
        return await self.boards.find(binned_before(cutoff)).to_list(None)

    async def rename(self, board_id: str, title: str, at: datetime) -> None:
        await self.boards.update_one(board(board_id), {"$set": {"title": title, "updated_at": at}})

    async def to_bin(self, board_id: str, at: datetime) -> None:
        await self.boards.update_one(live_board(board_id), {"$set": {"deleted_at": at}})

    async def restore(self, board_id: str, at: datetime) -> None:
        await self.boards.update_one(board(board_id), {"$set": {"deleted_at": None, "updated_at": at}})

    async def archive_beyond(self, owner_id: str, keep: int, at: datetime) -> int:
        """Archive the owner's writable boards beyond the ``keep`` most recently updated; how many."""
        where = owners_writable_boards(owner_id)
        boards = await all_of(self.boards, where, sort=owners_writable_boards.sort_list, projection={"_id": 1})
        extra = [b["_id"] for b in boards[keep:]]
        if not extra:
            return 0
        result = await self.boards.update_many(
            unarchived_among(extra), {"$set": {"archived_at": at, "updated_at": at}}
        )
        return int(result.modified_count)

    async def unarchive_all(self, owner_id: str, at: datetime) -> None:
        await self.boards.update_many(
            owners_archived_boards(owner_id), {"$set": {"archived_at": None, "updated_at": at}}
        )

    async def delete(self, board_id: str) -> None:
        """The board and its member rows (its content belongs to ``board_content``)."""
        await self.members.delete_many(boards_members(board_id))
        await self.boards.delete_one(board(board_id))

    # -- members ----------------------------------------------------------------------------

    async def role_of(self, board_id: str, user_id: str) -> str | None:
        member = await self.members.find_one(membership(board_id, user_id), {"role": 1})
        return str(member["role"]) if member else None

    async def members_of(self, board_id: str) -> list[dict[str, Any]]:
        return await all_of(self.members, boards_members(board_id), sort=boards_members.sort_list)

    async def add_member(self, row: dict[str, Any]) -> bool:
        """Add ``row`` (its ``_id`` from ``member_id``), or change the role of an existing member;
        True when the member is new."""
        try:
            await self.members.insert_one(row)
        except DuplicateKeyError:
            await self.members.update_one({"_id": row["_id"]}, {"$set": {"role": row["role"]}})
            return False
        return True

    async def remove_member(self, board_id: str, user_id: str) -> bool:
        return (await self.members.delete_one(membership(board_id, user_id))).deleted_count == 1
