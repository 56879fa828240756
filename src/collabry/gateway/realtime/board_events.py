"""Board events: join, update, awareness, leave, and the presence list they change.

An update is checked (size, base64, Yjs structure), stored in the database, relayed to the board's
room on every replica (Redis), and only then acknowledged. Awareness (cursors, selections) is
relayed and never stored; the awareness clients a socket announced are cleared for the others
when it leaves the board, is evicted, or disconnects. Access is the policy layer's, cached per
connection for ``ACCESS_RECHECK`` seconds; a member removed (or every member of a deleted board)
is evicted from the room at once by the REST route (``evict``), on every replica.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import structlog
from pymongo.errors import PyMongoError

from ...metrics import BOARD_UPDATES
from ...realtime.board_docs import COMPACT_BATCH, InvalidUpdate, append_update, check_update, compact, load_board
from ...realtime.emitter import board_room
from .access import board_access
from .connections import BoardAccess, Connection
from .payloads import (
    MAX_AWARENESS_CLIENTS,
    BoardAwareness,
    BoardRef,
    BoardUpdate,
    EventError,
    awareness_entries,
    awareness_removal,
    decode_base64,
    encode_base64,
    parse,
)

if TYPE_CHECKING:
    from .server import RealtimeHub

log = structlog.get_logger("collabry.realtime.board_docs")

ACCESS_RECHECK = 30.0
# Presence changes of one board within this many seconds go out as one ``presence`` event: a
# room of N people joining at once gets N events, not N squared.
PRESENCE_DELAY = 0.1
# Updates appended through this process to one board before it folds them into the snapshot.
COMPACT_AFTER = 200


class Compactor:
    """Runs at most one compaction per board at a time in this process, in the background."""

    def __init__(self, hub: RealtimeHub) -> None:
        self.hub = hub
        self.appended: dict[str, int] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def note_append(self, board_id: str) -> None:
        count = self.appended.get(board_id, 0) + 1
        self.appended[board_id] = count
        if count >= COMPACT_AFTER:
            self.request(board_id)

    def request(self, board_id: str) -> None:
        if board_id in self.tasks:
            return
        self.appended.pop(board_id, None)
        self.tasks[board_id] = asyncio.create_task(self._run(board_id), name=f"compact:{board_id}")

    async def _run(self, board_id: str) -> None:
        try:
            while await compact(self.hub.db, board_id) >= COMPACT_BATCH:
                pass
        except Exception as exc:  # the updates stay stored; the next trigger tries again
            log.warning("board_compaction_failed", board_id=board_id, error=str(exc))
        finally:
            self.tasks.pop(board_id, None)

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class BoardEvents:
    def __init__(self, hub: RealtimeHub) -> None:
        self.hub = hub
        self.compactor = Compactor(hub)
        self._announcing: dict[str, asyncio.Task[None]] = {}

    async def join(self, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        board_id = parse(BoardRef, args).boardId
        access = await board_access(self.hub.db, board_id, conn.user_id)
        if access is None:
            raise EventError("not_found", "board not found")
        room = board_room(board_id)
        # Enter the room before reading the document: an update stored after the read is then
        # relayed to this socket, one stored before it is in the state (both is harmless).
        await self.hub.sio.enter_room(conn.sid, room)
        conn.boards[board_id] = access
        try:
            state, backlog = await load_board(self.hub.db, board_id)
            await self.hub.presence.join(board_id, conn)
            peers = await self.hub.presence.users(board_id)
        except Exception:
            conn.boards.pop(board_id, None)
            await self.hub.sio.leave_room(conn.sid, room)
            raise
        self._announce(board_id)
        if backlog >= COMPACT_AFTER:
            self.compactor.request(board_id)
        return {"ok": True, "state": encode_base64(state), "peers": peers}

    async def update(self, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        msg = parse(BoardUpdate, args)
        access = await self._access(conn, msg.boardId)
        if not access.writable:
            BOARD_UPDATES.labels("forbidden").inc()
            raise EventError("forbidden", f"the {access.role} role cannot edit this board")
        update = decode_base64(msg.update)
        try:
            check_update(update)
        except InvalidUpdate as exc:
            BOARD_UPDATES.labels("invalid").inc()
            raise EventError(exc.code, str(exc)) from None
        try:
            await append_update(self.hub.db, msg.boardId, update, user_id=conn.user_id)
        except PyMongoError as exc:
            BOARD_UPDATES.labels("unavailable").inc()
            log.warning("board_update_not_stored", board_id=msg.boardId, error=str(exc))
            raise EventError("unavailable", "the update was not saved; send it again") from None
        BOARD_UPDATES.labels("stored").inc()
        await self.hub.sio.emit(
            "board:update", {"boardId": msg.boardId, "update": msg.update}, room=board_room(msg.boardId),
            skip_sid=conn.sid,
        )
        self.compactor.note_append(msg.boardId)
        return {"ok": True}

    async def awareness(self, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        msg = parse(BoardAwareness, args)
        await self._access(conn, msg.boardId)
        self._track_awareness(conn, msg.boardId, decode_base64(msg.update))
        await self.hub.sio.emit(
            "board:awareness", {"boardId": msg.boardId, "update": msg.update}, room=board_room(msg.boardId),
            skip_sid=conn.sid,
        )
        return {"ok": True}

    @staticmethod
    def _track_awareness(conn: Connection, board_id: str, update: bytes) -> None:
        try:
            entries = awareness_entries(update)
        except ValueError:
            return  # relayed as it is; nothing to clear for it later
        clients = conn.awareness.setdefault(board_id, {})
        for client, clock, removed in entries:
            if removed:
                clients.pop(client, None)
            elif client in clients or len(clients) < MAX_AWARENESS_CLIENTS:
                clients[client] = max(clock, clients.get(client, 0))

    async def _clear_awareness(self, conn: Connection, board_id: str) -> None:
        clients = conn.awareness.pop(board_id, None)
        if clients:
            update = encode_base64(awareness_removal(clients))
            await self.hub.sio.emit(
                "board:awareness", {"boardId": board_id, "update": update}, room=board_room(board_id),
                skip_sid=conn.sid,
            )

    async def _drop(self, conn: Connection, board_id: str) -> None:
        """Take the socket off the board: room, awareness, presence."""
        conn.boards.pop(board_id, None)
        await self.hub.sio.leave_room(conn.sid, board_room(board_id))
        await self._clear_awareness(conn, board_id)
        await self._left(board_id, conn.sid)

    async def leave(self, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        board_id = parse(BoardRef, args).boardId
        if board_id in conn.boards:
            await self._drop(conn, board_id)
        return {"ok": True}

    async def disconnected(self, conn: Connection) -> None:
        for board_id in list(conn.boards):
            conn.boards.pop(board_id, None)
            await self._clear_awareness(conn, board_id)
            await self._left(board_id, conn.sid)

    async def evict(self, board_id: str, user_ids: set[str] | None, *, recheck: bool = False) -> None:
        """This process's sockets of ``user_ids`` (all when None) leave the board's room now."""
        for conn in self.hub.connections:
            if board_id not in conn.boards or (user_ids is not None and conn.user_id not in user_ids):
                continue
            if recheck:
                fresh = await board_access(self.hub.db, board_id, conn.user_id)
                if fresh is not None:
                    conn.boards[board_id] = fresh
                    continue
            await self._drop(conn, board_id)
            await self.hub.sio.emit(
                "board:removed", {"boardId": board_id}, to=conn.sid, namespace="/", ignore_queue=True
            )

    async def _left(self, board_id: str, sid: str) -> None:
        await self.hub.presence.leave(board_id, sid)
        self._announce(board_id)

    def _announce(self, board_id: str) -> None:
        """Send the board's presence list to its room shortly (changes meanwhile join this one)."""
        if board_id not in self._announcing:
            self._announcing[board_id] = asyncio.create_task(self._announce_later(board_id))

    async def _announce_later(self, board_id: str) -> None:
        await asyncio.sleep(PRESENCE_DELAY)
        self._announcing.pop(board_id, None)  # a change from now on schedules the next event
        try:
            peers = await self.hub.presence.users(board_id)
            await self.hub.sio.emit("presence", {"boardId": board_id, "users": peers}, room=board_room(board_id))
        except Exception as exc:  # the next change sends the list again
            log.warning("presence_announce_failed", board_id=board_id, error=str(exc))

    async def close(self) -> None:
        tasks = list(self._announcing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.compactor.close()

    async def _access(self, conn: Connection, board_id: str) -> BoardAccess:
        access = conn.boards.get(board_id)
        if access is None:
            raise EventError("not_joined", "join the board first")
        if time.monotonic() - access.checked_at > ACCESS_RECHECK:
            fresh = await board_access(self.hub.db, board_id, conn.user_id)
            if fresh is None:
                await self._drop(conn, board_id)
                raise EventError("not_found", "board not found")
            conn.boards[board_id] = access = fresh
        return access
