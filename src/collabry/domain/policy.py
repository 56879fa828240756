"""The one authorisation layer: every handler and every domain service asks here.

- Boards: roles owner > editor > viewer. Viewers read; editors also write (title, content);
  only the owner deletes, restores and manages members. A board in the recycle bin is invisible
  to everyone but its owner's restore; an archived board (plan downgrade) is read-only.
- Notebooks, sources, planner tasks, notifications, checkouts: owner only.
- Admin role: operations only the CLI offers (coupon creation).

A resource the caller may not see is ``NotFound`` (404), never ``Forbidden``: other users' ids
must not reveal that something exists. ``Forbidden`` (403) is only for a member lacking a role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..db.billing import Checkouts
from ..db.boards import Boards
from ..db.client import Database
from ..db.notebooks import Notebooks
from ..db.notifications import Notifications
from ..db.planner import PlannerTasks
from ..db.sources import Sources
from ..db.users import UserRepository
from ..errors import Forbidden, NotFound, Unauthorized

ROLES = ("viewer", "editor", "owner")
RANK = {role: i for i, role in enumerate(ROLES, start=1)}


class BoardAction(Enum):
    READ = "viewer"
    WRITE = "editor"
    MANAGE = "owner"


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    role: str = "user"
    plan: str = "free"
    name: str = ""
    email: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# The CLI acts with full rights: only someone with the host's credentials can run it.
SYSTEM = Actor("system", role="admin", name="system")


async def actor(db: Database, user_id: str) -> Actor:
    user = await UserRepository(db).by_id(user_id)
    if user is None:
        raise Unauthorized("the account no longer exists")
    return Actor(user_id, user.get("role") or "user", user.get("plan") or "free", user.get("name", ""),
                 user.get("email", ""))


def require_admin(who: Actor) -> None:
    if not who.is_admin:
        raise Forbidden("this operation needs the admin role")


# -- boards -----------------------------------------------------------------------------------


async def board_role(db: Database, board_id: str, user_id: str, *, board: dict[str, Any] | None = None) -> str | None:
    """The caller's role on a live board, or None (no access, unknown or in the recycle bin).

    Real-time code uses this for ``board:join`` / ``board:update`` so sockets follow the same rules.
    """
    if board is None:
        board = await Boards(db).live(board_id)
    if board is None or board.get("deleted_at") is not None:
        return None
    if board["owner_id"] == user_id:
        return "owner"
    return await Boards(db).role_of(board_id, user_id)


def allows(role: str | None, action: BoardAction, *, archived: bool = False) -> bool:
    if role is None:
        return False
    if archived and action is BoardAction.WRITE:
        return False
    return RANK[role] >= RANK[action.value]


async def authorize_board(db: Database, board_id: str, user_id: str, action: BoardAction) -> tuple[dict[str, Any], str]:
    board = await Boards(db).live(board_id)
    role = await board_role(db, board_id, user_id, board=board) if board else None
    if board is None or role is None:
        raise NotFound("board")
    if not allows(role, action, archived=board.get("archived_at") is not None):
        if board.get("archived_at") is not None and action is BoardAction.WRITE:
            raise Forbidden("the board is archived and read-only")
        raise Forbidden(f"this needs the {action.value} role on the board; you are {role}")
    return board, role


async def deleted_board(db: Database, board_id: str, user_id: str) -> dict[str, Any]:
    """A board in the owner's recycle bin (only the owner sees it)."""
    board = await Boards(db).binned(board_id, user_id)
    if board is None:
        raise NotFound("board")
    return board


# -- owner-only resources ---------------------------------------------------------------------


def _found(doc: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if doc is None:
        raise NotFound(what)
    return doc


async def notebook(db: Database, notebook_id: str, user_id: str) -> dict[str, Any]:
    return _found(await Notebooks(db).live(notebook_id, user_id), "notebook")


async def deleted_notebook(db: Database, notebook_id: str, user_id: str) -> dict[str, Any]:
    return _found(await Notebooks(db).binned(notebook_id, user_id), "notebook")


async def source(db: Database, notebook_id: str, source_id: str, user_id: str) -> dict[str, Any]:
    await notebook(db, notebook_id, user_id)
    return _found(await Sources(db).live(source_id, user_id, notebook_id), "source")


async def task(db: Database, task_id: str, user_id: str) -> dict[str, Any]:
    return _found(await PlannerTasks(db).get(task_id, user_id), "task")


async def notification(db: Database, notification_id: str, user_id: str) -> dict[str, Any]:
    return _found(await Notifications(db).get(notification_id, user_id), "notification")


async def checkout(db: Database, checkout_id: str, user_id: str) -> dict[str, Any]:
    return _found(await Checkouts(db).of_user(checkout_id, user_id), "checkout")
