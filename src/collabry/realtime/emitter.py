"""Push Socket.IO events to users from any process (gateway replica or worker).

An ``Emitter`` is a write-only ``AsyncRedisManager`` on the same channel as the gateways' Socket.IO
servers: it publishes the event on Redis and every replica delivers it to the sockets it holds in
the target room. The sender needs no Socket.IO server of its own.
"""

from __future__ import annotations

from typing import Any

import socketio

from ..cache.keys import Keys
from ..config import Settings

NAMESPACE = "/"


def user_room(user_id: str) -> str:
    """Every socket of a user joins this room on connect."""
    return f"user:{user_id}"


def board_room(board_id: str) -> str:
    return f"board:{board_id}"


def socketio_manager(settings: Settings, *, write_only: bool) -> socketio.AsyncRedisManager:
    """The Redis client manager every process uses, so gateways and emitters share one channel."""
    return socketio.AsyncRedisManager(
        settings.redis_url,
        channel=Keys(settings.redis_prefix).socketio_channel(),
        write_only=write_only,
        redis_options={"socket_connect_timeout": 2.0, "health_check_interval": 30},
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
