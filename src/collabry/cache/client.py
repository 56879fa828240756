"""The redis-py asyncio client with retries, backoff and jitter on connection errors."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ..config import Settings

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def create_redis(settings: Settings, *, timeout: float = 2.0, retries: int = 1) -> Redis:
    # One quick retry hides a dropped idle connection; an outage still surfaces within about a
    # second so callers can fail open or closed instead of hanging. The pool blocks (up to the
    # timeout) when all its connections are busy: the default pool raises "Too many connections"
    # instead, which turned a burst of concurrent answers into errors.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=max(timeout, 5.0),
        decode_responses=False,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry=Retry(EqualJitterBackoff(cap=0.5, base=0.05), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        # No CLIENT SETINFO on each new connection: a round trip that tells Redis nothing we use.
        driver_info=None,
    )
    return Redis.from_pool(pool)  # the client owns the pool and closes it with itself


class LuaScript:
    """A Lua script called by SHA: ``EVALSHA`` straight through ``execute_command`` (without
    redis-py's ``Script`` object and its per-call bookkeeping); a Redis that has forgotten it
    (restarted, ``SCRIPT FLUSH``) gets it loaded once and the call repeated."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()  # Redis' script id

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
