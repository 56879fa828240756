"""The gateway's Socket.IO server: authentication, user rooms, event dispatch, drain.

Every replica runs one ``AsyncServer`` whose client manager is an ``AsyncRedisManager`` on the
channel from ``cache.redis_keys``: an emit to a room on any replica (or from the worker's write-only
``Emitter``) reaches that room's sockets on every replica. Each replica writes a broadcast to its
local websockets once-encoded and without a task per recipient (``fanout``).

- Connect: ``auth: {token}`` must be a valid access token of a session that is still active;
  otherwise the connection is refused with ``{"message": "unauthorized"}``. The socket joins
  ``user:<id>``; identity comes only from the token, never from payloads.
- Events: each one spends from the connection's budget, is parsed as a strict model and runs
  inside a guard, so junk, floods and failures come back as error acks and never escape.
- Revocation: logout-all, logout, a deleted session and refresh-token reuse send ``session_revoked``
  to the sockets concerned and disconnect them, on every replica; a board member removed (or every
  member of a deleted board) is taken out of the board's room at once. Both are evictions
  published through the Socket.IO manager (``RealtimeManager.evict``), handled by this process
  before the REST answer and by the other replicas as the message arrives.
- Malformed traffic: a frame that is not a well-formed Socket.IO packet, an event before CONNECT,
  and any binary packet or attachment (Yjs travels as base64 text) is never handed to the library's
  parser state: binary drops the connection at once, other junk after ``MAX_BAD_PACKETS``, with
  one short log line and no traceback.
- Drain (SIGTERM): new handshakes get 503 (nginx tries the next replica) and the open transports
  are closed, so clients reconnect elsewhere instead of holding the drain open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import socketio
import structlog
from aiohttp import web
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from ...appkeys import DB, DRAIN, REDIS, SETTINGS
from ...auth.tokens import InvalidToken
from ...cache.redis_keys import Keys
from ...db.client import Database
from ...errors import AppError
from ...loops import Stop
from ...metrics import SOCKETIO_CLIENTS, SOCKETIO_EVENTS
from ...realtime.emitter import NAMESPACE, RealtimeManager, socketio_manager, user_room
from ..keys import ACCESS_TOKENS, HUB, LOGOUT_ALL_HOOKS, REFRESH_TOKENS, SESSION_REVOKED_HOOKS, USERS
from ..security import ip_of
from . import fanout
from .board_events import BoardEvents
from .connections import Connection, Connections, EventBudget
from .fanout import FanoutManager
from .payloads import EventError, error_ack
from .presence import REFRESH, Presence

log = structlog.get_logger("collabry.realtime")

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_TOKEN_CHARS = 4096

EventHandler = Callable[[Connection, tuple[Any, ...]], Awaitable[dict[str, Any]]]
# Malformed packets one Engine.IO connection may send before it is dropped.
MAX_BAD_PACKETS = 3


class PacketJson:
    """The JSON codec of Engine.IO and Socket.IO packets: a body nested past the parser's
    recursion limit is a ValueError (a malformed packet), never a RecursionError."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(*args: Any, **kwargs: Any) -> Any:
        try:
            return json.loads(*args, **kwargs)
        except RecursionError:
            raise ValueError("nested too deeply") from None


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """An ``AsyncServer`` that parses and checks each packet before the library dispatches it.

    The library raises on junk (logged with a traceback per frame) and buffers the binary
    attachments a packet announces, however many; here junk is counted and binary refused.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bad_packets: dict[str, int] = {}
        self.dropping: set[str] = set()
        self._drops: set[asyncio.Task[None]] = set()

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid in self.dropping:
            return
        if not isinstance(data, str):
            return await self._bad_packet(eio_sid, "binary", fatal=True)
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception:  # any parse failure of client bytes is the client's
            await self._bad_packet(eio_sid, "malformed")
            return
        kind = pkt.packet_type
        if kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            await self._bad_packet(eio_sid, "binary", fatal=True)
            return
        if kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
            return
        if kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
            return
        if kind not in (sio_packet.EVENT, sio_packet.ACK):
            await self._bad_packet(eio_sid, "unexpected")
            return
        namespace = pkt.namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            await self._bad_packet(eio_sid, "not_connected")
            return
        if not isinstance(pkt.data, list) or (
            kind == sio_packet.EVENT and not (pkt.data and isinstance(pkt.data[0], str))
        ):
            await self._bad_packet(eio_sid, "malformed")
            return
        if kind == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
            return
        await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        return

    async def _bad_packet(self, eio_sid: str, reason: str, *, fatal: bool = False) -> None:
        SOCKETIO_EVENTS.labels("packet", reason).inc()
        count = self.bad_packets.get(eio_sid, 0) + 1
        self.bad_packets[eio_sid] = count
        if not fatal and count < MAX_BAD_PACKETS:
            return
        self.dropping.add(eio_sid)
        log.warning("socket_dropped", eio_sid=eio_sid, reason=reason, bad_packets=count)
        # Not awaited here: the close must not run inside the receive loop it ends.
        task = asyncio.create_task(self._drop(eio_sid))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def _drop(self, eio_sid: str) -> None:
        """End the Engine.IO session and its transport now. A polite close would leave the
        websocket open until the client speaks again; the ``None`` ends the session's writer,
        which closes the websocket (or answers the pending long-poll)."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return
        await sock.close(wait=False, abort=True)
        await sock.queue.put(None)
        self.eio.sockets.pop(eio_sid, None)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        self.bad_packets.pop(eio_sid, None)
        self.dropping.discard(eio_sid)
        self._binary_packet.pop(eio_sid, None)
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None and not sock.upgraded and reason == self.eio.reason.CLIENT_DISCONNECT:
            # A polling client that sent CLOSE still has a long-poll open, which python-engineio
            # would hold until its timeout (45 s): answer it now, as engine.io in node does.
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
        await super()._handle_eio_disconnect(eio_sid, reason)


class RealtimeHub:
    """One per gateway process: the Socket.IO server and what its handlers share."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        settings = app[SETTINGS]
        self.settings = settings
        self.manager: RealtimeManager = socketio_manager(settings, write_only=False, cls=FanoutManager)
        self.manager.on_evict = self.on_evict
        self.sio = GuardedServer(
            async_mode="aiohttp",
            client_manager=self.manager,
            # None = same origin only; an explicit list otherwise. Never '*'.
            cors_allowed_origins=list(settings.cors_origins) or None,
            max_http_buffer_size=MAX_MESSAGE_BYTES,
            json=PacketJson,
            ping_interval=25,
            ping_timeout=20,
            logger=False,
            engineio_logger=False,
        )
        fanout.install(self.sio)
        self.connections = Connections()
        # TCP connections of the Engine.IO requests in progress (websockets, long polls)
        self.transports: set[asyncio.BaseTransport] = set()
        self.boards = BoardEvents(self)
        self._presence: Presence | None = None
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        for event, handler in {
            "board:join": self.boards.join,
            "board:update": self.boards.update,
            "board:awareness": self.boards.awareness,
            "board:leave": self.boards.leave,
        }.items():
            self.sio.on(event, self._guard(event, handler))
        self.sio.on("*", self.on_unknown_event)

    @property
    def db(self) -> Database:
        return self.app[DB]

    @property
    def presence(self) -> Presence:
        if self._presence is None:
            self._presence = Presence(self.app[REDIS], Keys(self.settings.redis_prefix))
        return self._presence

    # -- connection lifecycle -----------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        request = environ.get("aiohttp.request")
        ip = ip_of(request) if isinstance(request, web.Request) else ""
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        try:
            claims = self.app[ACCESS_TOKENS].verify(token)
        except InvalidToken:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from None
        try:
            active = await self.app[REFRESH_TOKENS].is_active(claims.session_id)
            user = await self.app[USERS].by_id(claims.user_id) if active else None
        except Exception as exc:
            log.warning("socket_connect_unavailable", error=str(exc))
            raise socketio.exceptions.ConnectionRefusedError("unavailable") from None
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        conn = Connection(
            sid=sid,
            user_id=claims.user_id,
            session_id=claims.session_id,
            name=str(user.get("name", "")),
            ip=ip,
            budget=EventBudget(self.settings.socket_event_limit),
        )
        await self.sio.enter_room(sid, user_room(conn.user_id))
        self.connections.add(conn)
        SOCKETIO_CLIENTS.inc()
        log.info("socket_connected", sid=sid, user_id=conn.user_id, client_ip=ip)
        return True

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.connections.pop(sid)
        if conn is None:
            return
        SOCKETIO_CLIENTS.dec()
        try:
            await self.boards.disconnected(conn)
        except Exception as exc:  # entries expire by themselves
            log.warning("socket_presence_cleanup_failed", sid=sid, error=str(exc))
        log.info("socket_disconnected", sid=sid, user_id=conn.user_id, reason=str(reason))

    async def logout_all(self, app: web.Application, user_id: str) -> None:
        """LOGOUT_ALL_HOOKS: tell every socket of the user, then disconnect them on every replica."""
        await self._publish_evict({"kind": "user", "userId": user_id, "reason": "logout_all"})

    async def sessions_revoked(self, app: web.Application, user_id: str, session_ids: list[str], reason: str) -> None:
        """SESSION_REVOKED_HOOKS: the sockets of these sessions, on every replica."""
        await self._publish_evict({"kind": "sessions", "sessionIds": session_ids, "reason": reason})

    async def evict_from_board(self, board_id: str, user_ids: list[str] | None, *, recheck: bool = False) -> None:
        """Take these users' sockets (everyone's when None) out of the board's room on every replica;
        with ``recheck``, only those whose access the policy no longer grants (a role changed)."""
        await self._publish_evict({"kind": "board", "boardId": board_id, "userIds": user_ids, "recheck": recheck})

    async def _publish_evict(self, payload: dict[str, Any]) -> None:
        try:
            await self.manager.evict(payload)
        except Exception as exc:  # the revocation is stored; access re-checks catch up
            log.warning("socket_eviction_not_published", kind=payload.get("kind"), error=str(exc))

    async def on_evict(self, data: dict[str, Any]) -> None:
        """An eviction from any replica (or this one), for the sockets this process holds."""
        kind = data.get("kind")
        reason = str(data.get("reason", "revoked"))
        try:
            if kind == "board" and isinstance(data.get("boardId"), str):
                users = data.get("userIds")
                await self.boards.evict(
                    data["boardId"], set(users) if isinstance(users, list) else None, recheck=bool(data.get("recheck"))
                )
            elif kind == "sessions" and isinstance(data.get("sessionIds"), list):
                sessions = set(data["sessionIds"])
                for conn in self.connections:
                    if conn.session_id in sessions:
                        await self._end(conn, reason)
            elif kind == "user" and isinstance(data.get("userId"), str):
                for conn in self.connections:
                    if conn.user_id == data["userId"]:
                        await self._end(conn, reason)
        except Exception as exc:
            log.warning("socket_eviction_failed", kind=kind, error=str(exc))

    async def _end(self, conn: Connection, reason: str) -> None:
        await self.sio.emit("session_revoked", {"reason": reason}, to=conn.sid, namespace=NAMESPACE, ignore_queue=True)
        await self.sio.disconnect(conn.sid, namespace=NAMESPACE, ignore_queue=True)

    # -- events -------------------------------------------------------------------------------

    def _guard(self, event: str, handler: EventHandler) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def guarded(sid: str, *args: Any) -> dict[str, Any]:
            conn = self.connections.get(sid)
            if conn is None:
                return self._refuse(event, "unauthorized", "not connected")
            if not conn.budget.take():
                return self._refuse(event, "rate_limited", "too many events; slow down")
            try:
                result = await handler(conn, args)
            except EventError as exc:
                return self._refuse(event, exc.code, exc.message)
            except Exception:
                log.exception("socket_event_failed", socket_event=event, sid=sid)
                return self._refuse(event, "internal", "internal error")
            SOCKETIO_EVENTS.labels(event, "ok").inc()
            return result

        return guarded

    @staticmethod
    def _refuse(event: str, code: str, message: str) -> dict[str, Any]:
        SOCKETIO_EVENTS.labels(event, code).inc()
        return error_ack(code, message)

    async def on_unknown_event(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        conn = self.connections.get(sid)
        if conn is not None and not conn.budget.take():
            return self._refuse("unknown", "rate_limited", "too many events; slow down")
        return self._refuse("unknown", "unknown_event", "unknown event")

    # -- process lifecycle --------------------------------------------------------------------

    async def close_transports(self) -> None:
        """Drop every Engine.IO connection of this process; clients reconnect (to another replica).

        The TCP connections are closed rather than sent a polite CLOSE packet: clients treat a
        lost connection as a reason to reconnect, but a CLOSE from the server as final.
        """
        sockets = list(self.sio.eio.sockets.values())
        if sockets:
            await asyncio.gather(*(s.close(wait=False, abort=True) for s in sockets), return_exceptions=True)
        for transport in list(self.transports):
            transport.close()

    async def _refresh_loop(self, stop: Stop) -> None:
        while await stop.sleep(REFRESH):  # a cancel alone may be lost (``loops``)
            try:
                await self.presence.refresh(self.connections)
            except Exception as exc:
                log.warning("presence_refresh_failed", error=str(exc))

    async def _drain_watch(self) -> None:
        await self.app[DRAIN].draining.wait()
        log.info("socketio_draining", sockets=len(self.connections))
        await self.close_transports()

    async def ctx(self, app: web.Application) -> AsyncIterator[None]:
        refreshing = Stop()
        refresh = asyncio.create_task(self._refresh_loop(refreshing), name="presence-refresh")
        drain_watch = asyncio.create_task(self._drain_watch(), name="socketio-drain")
        yield
        drain_watch.cancel()
        await refreshing.stop(refresh)
        await asyncio.gather(drain_watch, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.close_transports()
        await self.boards.close()
        await self.sio.shutdown()
        manager = self.sio.manager
        listener = getattr(manager, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        redis = getattr(manager, "redis", None)
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()


async def realtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the process's Socket.IO hub, told of every logout and revoked session."""
    hub = app[HUB] = RealtimeHub(app)
    app[LOGOUT_ALL_HOOKS].append(hub.logout_all)
    app[SESSION_REVOKED_HOOKS].append(hub.sessions_revoked)
    async with contextlib.asynccontextmanager(hub.ctx)(app):
        yield


def add_endpoint(app: web.Application) -> None:
    """The Engine.IO endpoint. A transport, not part of the JSON API: it is served outside
    ``routes`` so the OpenAPI document lists only /api."""
    resource = app.router.add_resource("/socket.io/", name="socketio")
    for method in ("GET", "POST", "OPTIONS"):
        resource.add_route(method, _engineio)



async def _engineio(request: web.Request) -> web.StreamResponse:
    if request.app[DRAIN].draining.is_set() and "sid" not in request.query:
        # A new session on a replica that is going away; nginx passes a 503 on to the next one.
        raise AppError(
            status=503, code="unavailable", message="this replica is shutting down", headers={"Retry-After": "1"}
        )
    hub = request.app[HUB]
    transport = request.transport
    if transport is not None:
        hub.transports.add(transport)
    try:
        response = await hub.sio.handle_request(request)
    except Exception as exc:  # junk below Socket.IO (an Engine.IO frame that is no packet): the
        # transport ends; one short line, no traceback of client bytes
        log.warning("engineio_transport_error", error=type(exc).__name__, client_ip=ip_of(request))
        return web.Response(status=400)
    finally:
        if transport is not None:
            hub.transports.discard(transport)
    return response if isinstance(response, web.StreamResponse) else web.Response(status=400)
