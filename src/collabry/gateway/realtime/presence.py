"""Who is on which board, across every gateway replica, in Redis.

One hash per board, ``presence:<board>``: sid -> {"id", "name", "exp"} (the board's ``presence``
list). The replica holding a socket refreshes its entries every ``REFRESH`` seconds, so the
entries of a replica that crashed fall out after ``TTL`` seconds instead of lingering forever.
(Sockets to disconnect on revocation are found by each replica itself, on the manager's eviction
message: realtime/emitter.py.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from ...cache.redis_keys import Keys
from .connections import Connection

TTL = 90
REFRESH = 30


class Presence:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    @staticmethod
    def _exp() -> int:
        return int(time.time()) + TTL

    async def join(self, board_id: str, conn: Connection) -> None:
        key = self.keys.board_presence(board_id)
        value = json.dumps({"id": conn.user_id, "name": conn.name, "exp": self._exp()})
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, conn.sid, value)
            pipe.expire(key, TTL)
            await pipe.execute()

    async def leave(self, board_id: str, sid: str) -> None:
        await self.redis.hdel(self.keys.board_presence(board_id), sid)

    async def users(self, board_id: str) -> list[dict[str, str]]:
        """Distinct users on the board, in a stable order; expired entries are removed."""
        key = self.keys.board_presence(board_id)
        raw = await self.redis.hgetall(key)
        now = time.time()
        users: dict[str, str] = {}
        expired = []
        for sid, value in raw.items():
            entry = _json(value)
            if entry is None or _int(entry.get("exp")) <= now:
                expired.append(sid)
                continue
            users.setdefault(str(entry.get("id")), str(entry.get("name", "")))
        if expired:
            await self.redis.hdel(key, *expired)
        return [{"id": uid, "name": name} for uid, name in sorted(users.items())]

    async def refresh(self, connections: Iterable[Connection]) -> None:
        """Extend the entries of every socket this process holds (one pipeline)."""
        exp = self._exp()
        async with self.redis.pipeline(transaction=False) as pipe:
            for conn in connections:
                for board_id in conn.boards:
                    key = self.keys.board_presence(board_id)
                    pipe.hset(key, conn.sid, json.dumps({"id": conn.user_id, "name": conn.name, "exp": exp}))
                    pipe.expire(key, TTL)
            await pipe.execute()


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _json(value: bytes | str) -> dict[str, Any] | None:
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
