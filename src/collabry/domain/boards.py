"""Boards, their members and the recycle bin.

Collections (stored by ``db.boards``):
- ``boards`` ``{_id, owner_id, title, created_at, updated_at, deleted_at, archived_at}``;
  ``deleted_at`` set = in the owner's recycle bin for ``Settings.recycle_days`` (then the worker
  purges it with ``recycle.purge_board``); ``archived_at`` set = read-only after a plan downgrade.
- ``board_members`` ``{_id: "<boardId>:<userId>", board_id, user_id, role: editor|viewer,
  added_by, created_at}``; the owner is ``boards.owner_id`` and has no member row.
The board's Yjs content (``board_updates``, ``board_snapshots``) belongs to the real-time code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..config import Settings
from ..db.boards import Boards, member_id
from ..db.client import Database, iso, new_id, utcnow
from ..db.users import UserRepository
from ..errors import Conflict, NotFound
from . import policy, quotas
from .notifications import UserEmitter, notify
from .policy import Actor, BoardAction


def public(doc: dict[str, Any], role: str) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "title": doc["title"],
        "ownerId": doc["owner_id"],
        "role": role,
        "archived": doc.get("archived_at") is not None,
        "createdAt": iso(doc.get("created_at")),
        "updatedAt": iso(doc.get("updated_at")),
    }


def public_deleted(doc: dict[str, Any], settings: Settings) -> dict[str, Any]:
    deleted_at: datetime = doc["deleted_at"]
    return {
        **public(doc, "owner"),
        "deletedAt": iso(deleted_at),
        "purgeAt": iso(deleted_at + timedelta(days=settings.recycle_days)),
    }


async def create(db: Database, settings: Settings, who: Actor, title: str) -> dict[str, Any]:
    board_id = new_id()
    await quotas.take(db, settings, who, "boards", board_id)
    now = utcnow()
    doc = {"_id": board_id, "owner_id": who.user_id, "title": title, "created_at": now, "updated_at": now,
           "deleted_at": None, "archived_at": None}
    try:
        await Boards(db).insert(doc)
    except BaseException:
        await quotas.give_back(db, who.user_id, "boards", board_id)
        raise
    return doc


async def list_for(db: Database, user_id: str) -> list[tuple[dict[str, Any], str]]:
    docs, roles = await Boards(db).visible_to(user_id)
    return [(doc, "owner" if doc["owner_id"] == user_id else roles[doc["_id"]]) for doc in docs]


async def get(db: Database, user_id: str, board_id: str) -> tuple[dict[str, Any], str]:
    return await policy.authorize_board(db, board_id, user_id, BoardAction.READ)


async def members(db: Database, board: dict[str, Any]) -> list[dict[str, Any]]:
    rows = await Boards(db).members_of(board["_id"])
    names = await UserRepository(db).names([board["owner_id"], *(row["user_id"] for row in rows)])
    out = [{"userId": board["owner_id"], "name": names.get(board["owner_id"], ""), "role": "owner"}]
    out += [{"userId": row["user_id"], "name": names.get(row["user_id"], ""), "role": row["role"]} for row in rows]
    return out


async def rename(db: Database, user_id: str, board_id: str, title: str) -> tuple[dict[str, Any], str]:
    board, role = await policy.authorize_board(db, board_id, user_id, BoardAction.WRITE)
    now = utcnow()
    await Boards(db).rename(board_id, title, now)
    board.update(title=title, updated_at=now)
    return board, role


async def delete(db: Database, user_id: str, board_id: str) -> None:
    """Move the board to the recycle bin; members lose access at once."""
    await policy.authorize_board(db, board_id, user_id, BoardAction.MANAGE)
    await Boards(db).to_bin(board_id, utcnow())
    await quotas.give_back(db, user_id, "boards", board_id)


def _recycle_cutoff(settings: Settings, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=settings.recycle_days)


async def trash(db: Database, settings: Settings, user_id: str) -> list[dict[str, Any]]:
    return await Boards(db).bin_of(user_id, _recycle_cutoff(settings))


async def restore(db: Database, settings: Settings, who: Actor, board_id: str) -> dict[str, Any]:
    board = await policy.deleted_board(db, board_id, who.user_id)
    if board["deleted_at"] <= _recycle_cutoff(settings):
        raise NotFound("board")  # past the recycle window: waiting for the purge
    await quotas.take(db, settings, who, "boards", board_id)
    await Boards(db).restore(board_id, utcnow())
    board.update(deleted_at=None)
    return board


async def add_member(
    db: Database, emitter: UserEmitter | None, who: Actor, board_id: str, email: str, role: str
) -> tuple[dict[str, Any], bool]:
    """Add (or change the role of) a member; returns the member and whether it is new."""
    board, _ = await policy.authorize_board(db, board_id, who.user_id, BoardAction.MANAGE)
    user = await UserRepository(db).id_and_name_by_email(email)
    if user is None:
        raise NotFound("user")
    if user["_id"] == board["owner_id"]:
        raise Conflict("the owner is already on the board", code="already_owner")
    row = {"_id": member_id(board_id, user["_id"]), "board_id": board_id, "user_id": user["_id"], "role": role,
           "added_by": who.user_id, "created_at": utcnow()}
    created = await Boards(db).add_member(row)
    if created:
        await notify(db, emitter, user["_id"], "board_shared", f"{who.name or 'Someone'} shared a board with you",
                     f"You can now {'edit' if role == 'editor' else 'view'} “{board['title']}”.")
    return {"userId": user["_id"], "name": user.get("name", ""), "role": role}, created


async def remove_member(db: Database, user_id: str, board_id: str, member_user_id: str) -> None:
    """The owner removes anyone but themselves; any member may leave."""
    if member_user_id == user_id:
        _, role = await policy.authorize_board(db, board_id, user_id, BoardAction.READ)
        if role == "owner":
            raise Conflict("the owner cannot leave the board; delete it instead", code="owner_cannot_leave")
    else:
        await policy.authorize_board(db, board_id, user_id, BoardAction.MANAGE)
    if not await Boards(db).remove_member(board_id, member_user_id):
        raise NotFound("member")
