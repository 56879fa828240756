"""Push Socket.IO events to users from any process (gateway replica or worker).

An ``Emitter`` is a write-only ``AsyncRedisManager`` on the same channel as the gateways' Socket.IO
servers: it publishes the event on Redis and every replica delivers it to the sockets it holds in
the target room. The sender needs no Socket.IO server of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from ..cache.redis_keys import Keys
from ..config import Settings

NAMESPACE = "/"


def user_room(user_id: str) -> str:
    """Every socket of a user joins this room on connect."""
    return f"user:{user_id}"


def board_room(board_id: str) -> str:
    return f"board:{board_id}"


# A message for the gateways themselves, never delivered to a client: evict sockets from a board
# room, disconnect the sockets of revoked sessions. It travels as an ``emit`` on the manager's
# channel, so every replica (and the sender itself, first) handles it.
EVICT_EVENT = "collabry:evict"

EvictHandler = Callable[[dict[str, Any]], Awaitable[None]]


class RealtimeManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """``AsyncRedisManager`` that hands ``EVICT_EVENT`` messages to ``on_evict`` instead of clients."""

    on_evict: EvictHandler | None = None

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") == EVICT_EVENT:
            data = message.get("data")
            payload = data[0] if isinstance(data, list) and data else None
            if self.on_evict is not None and isinstance(payload, dict):
                await self.on_evict(payload)
            return
        await super()._handle_emit(message)

    async def evict(self, payload: dict[str, Any]) -> None:
        """Publish an eviction to every replica (handled here first, before this returns)."""
        await self.emit(EVICT_EVENT, payload, namespace=NAMESPACE)


def socketio_manager(
    settings: Settings, *, write_only: bool, cls: type[RealtimeManager] = RealtimeManager
) -> RealtimeManager:
    """The Redis client manager every process uses, so gateways and emitters share one channel
    (``cls``: the gateway's subclass with its own local delivery)."""
    return cls(
        settings.redis_url,
        channel=Keys(settings.redis_prefix).socketio_channel(),
        write_only=write_only,
        redis_options={"socket_connect_timeout": 2.0, "health_check_interval": 30, "driver_info": None},
    )


class Emitter:
    """``await Emitter(settings).to_user(user_id, "notification", {...})`` from any process."""

    def __init__(self, settings: Settings) -> None:
        self.manager = socketio_manager(settings, write_only=True)

    async def to_user(self, user_id: str, event: str, data: Any) -> None:
        await self.manager.emit(event, data, namespace=NAMESPACE, room=user_room(user_id))

    async def to_room(self, room: str, event: str, data: Any) -> None:
        await self.manager.emit(event, data, namespace=NAMESPACE, room=room)

    async def close(self) -> None:
        redis = getattr(self.manager, "redis", None)
        if redis is not None:
            await redis.aclose()
            self.manager.connected = False
