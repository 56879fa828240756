"""Room broadcasts written once per process: one encoded frame, one socket write per recipient.

Why: python-socketio delivers a room emit by starting one asyncio task per recipient; each task
puts the packet on the Engine.IO socket's queue, whose writer task wakes (through an
``asyncio.wait_for`` per queue wait) and hands the text to aiohttp, which frames it. At 1,000
sockets in a board that was ~50 µs of CPU per delivery and a p99 of hundreds of milliseconds.

Here a broadcast without acknowledgement callback is encoded once (Socket.IO packet, Engine.IO
packet and the websocket frame bytes) and written straight to the TCP transport of every local
websocket recipient, in the emitting call: no task, no queue, no framing per recipient. Who
receives it is the library's room table (``get_participants``), exactly as before, so room
admission (and so authorisation) is unchanged.

A recipient takes the normal path (the Engine.IO queue and its writer) whenever writing directly
could change what the library would do or the order of its packets:

- it is on the polling transport, upgrading, closed or closing;
- its queue holds (or its writer is still handling) packets: an ack, a ping, an earlier emit;
- its transport buffers more than ``DIRECT_BUFFER_LIMIT`` bytes (a slow reader waits for drain);
- its ping answer is overdue (the library closes the socket on its next send).

The websockets are served without permessage-deflate (socket.io 4's default as well), so one
frame fits every recipient. Payloads from the Redis channel are decoded once per process by the
manager's listener and then take the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from typing import Any

from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet
from socketio.async_manager import AsyncManager

from ...metrics import SOCKETIO_DELIVERIES
from ...realtime.emitter import EVICT_EVENT, RealtimeManager

# Above this many unsent bytes on a recipient's transport, its frames go through the writer,
# which waits for the socket to drain.
DIRECT_BUFFER_LIMIT = 64 * 1024

_DIRECT = SOCKETIO_DELIVERIES.labels("direct")
_QUEUED = SOCKETIO_DELIVERIES.labels("queued")


def text_frame(payload: bytes) -> bytes:
    """An unmasked, uncompressed, final websocket text frame (RFC 6455 5.2): what a server sends."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class FanoutWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """Engine.IO's aiohttp websocket, registered with its server for direct broadcast writes.

    ``sending`` counts the library writer's sends in progress: while one waits for the socket to
    drain, the writer still holds packets, so a direct write would overtake them."""

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self.socket = getattr(handler, "__self__", None)  # the engineio AsyncSocket
        self.transport: asyncio.Transport | None = None
        self.sending = 0

    async def __call__(self, environ: dict[str, Any]) -> web.StreamResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self.environ = environ
        self.transport = request.transport
        registry: dict[str, FanoutWebSocket] = self.server.fanout_websockets
        sid = getattr(self.socket, "sid", None)
        if sid is not None:
            registry[sid] = self
        try:
            await self.handler(self)
        finally:
            if sid is not None and registry.get(sid) is self:
                del registry[sid]
        return self._sock

    async def send(self, message: Any) -> None:
        self.sending += 1
        try:
            await super().send(message)
        finally:
            self.sending -= 1

    def writable(self, now: float) -> bool:
        """True when a frame written now lands after everything sent to this socket before."""
        sock = self.socket
        transport = self.transport
        if sock is None or transport is None or self.sending or self._sock is None or self._sock.closed:
            return False
        if not sock.upgraded or sock.upgrading or sock.closing or sock.closed:
            return False
        queue = sock.queue
        # _unfinished_tasks: the writer calls task_done only once it holds the packet, so a
        # packet taken off the queue but not yet written still counts here.
        if queue.qsize() or queue._unfinished_tasks:
            return False
        if sock.last_ping and now - sock.last_ping > self.server.ping_timeout:
            return False
        return not transport.is_closing() and transport.get_write_buffer_size() <= DIRECT_BUFFER_LIMIT


def install(sio: Any) -> None:
    """Serve this server's websockets through ``FanoutWebSocket`` (this server only)."""
    eio = sio.eio
    eio.fanout_websockets = {}
    eio._async = {**eio._async, "websocket": FanoutWebSocket}


class FanoutManager(RealtimeManager):
    """``RealtimeManager`` whose local delivery of a room emit is ``broadcast``.

    Emits with an acknowledgement callback and binary payloads keep the library's path."""

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if (
            message.get("event") == EVICT_EVENT
            or message.get("binary")
            or message.get("callback") is not None
            or not isinstance(data, list)
        ):
            await super()._handle_emit(message)
            return
        args = [] if data == [None] else data  # the library sends no argument for ``None``
        await self.broadcast(
            message["event"], args, message.get("namespace") or "/", message.get("room"), message.get("skip_sid")
        )

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is None and event != EVICT_EVENT:
            args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
            if not sio_packet.Packet.data_is_binary(args):
                if not kwargs.get("ignore_queue"):
                    # Published before the local writes (the library writes first): the other
                    # replicas start on their sockets while this one writes to its own.
                    await self._publish({
                        "method": "emit", "event": event, "data": args or [None], "binary": False,
                        "namespace": namespace or "/", "room": to or room, "skip_sid": skip_sid,
                        "callback": None, "host_id": self.host_id,
                    })
                await self.broadcast(event, args, namespace or "/", to or room, skip_sid)
                return
        await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback,
                           to=to, **kwargs)

    async def broadcast(self, event: str, args: list[Any], namespace: str, room: Any, skip_sid: Any) -> None:
        """Deliver ``event(*args)`` to this process's sockets in ``room`` (all when None), except
        ``skip_sid`` (one sid or a list): encoded once, written directly where that keeps order."""
        if namespace not in self.rooms:
            return
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        server = self.server
        encoded = server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        if isinstance(encoded, list):  # binary attachments: the library's path
            await AsyncManager.emit(self, event, tuple(args), namespace, room=room, skip_sid=skip_sid)
            return
        eio = server.eio
        eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        websockets: dict[str, FanoutWebSocket] = getattr(eio, "fanout_websockets", {})
        frame: bytes | None = None
        direct = 0
        queued = []
        now = time.time()
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            ws = websockets.get(eio_sid)
            if ws is not None and ws.writable(now):
                if frame is None:
                    frame = text_frame(eio_pkt.encode().encode())
                ws.transport.write(frame)  # type: ignore[union-attr]
                direct += 1
                continue
            sock = eio.sockets.get(eio_sid)
            if sock is not None and not sock.closed:
                queued.append(sock)
        if direct:
            _DIRECT.inc(direct)
        if queued:
            _QUEUED.inc(len(queued))
        for sock in queued:  # the library's path, one after the other: a send only queues
            with contextlib.suppress(Exception):  # a socket closed meanwhile (the library ignores it too)
                await sock.send(eio_pkt)

