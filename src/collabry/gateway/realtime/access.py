"""Board access for sockets, through the same policy layer as the REST routes."""

from __future__ import annotations

import time

from ...db.boards import Boards
from ...db.client import Database
from ...domain import policy
from .connections import BoardAccess


async def board_access(db: Database, board_id: str, user_id: str) -> BoardAccess | None:
    """The caller's role on a live board and whether it may write; None when it may not see it."""
    board = await Boards(db).live(board_id)
    if board is None:
        return None
    role = await policy.board_role(db, board_id, user_id, board=board)
    if role is None:
        return None
    archived = board.get("archived_at") is not None
    writable = policy.allows(role, policy.BoardAction.WRITE, archived=archived)
    return BoardAccess(role=role, writable=writable, checked_at=time.monotonic())
