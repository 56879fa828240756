"""The redis-py asyncio client with retries, backoff and jitter on connection errors."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from importlib import resources
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


class AutoPipeline:
    """Commands that concurrent callers issue within one turn of the event loop leave together:
    one pipeline, so one write and one connection for the lot instead of one each (each command
    keeps its own answer and, a script, its own atomicity). A lone command goes straight through.
    Callers await ``execute_command`` as they would the client's. While nothing is in flight a
    command is sent at once, so a lone caller pays nothing for the batching."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # commands sent and not answered yet

    async def execute_command(self, *args: Any) -> Any:
        if not self._in_flight and not self._batch:  # nothing to share a write with: go at once
            self._in_flight += 1
            try:
                return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]
            finally:
                self._in_flight -= 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append((args, future))
        return await future

    async def script_load(self, source: str) -> Any:
        return await self.redis.script_load(source)

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        self._in_flight += 1
        try:
            if len(batch) == 1:
                results: list[Any] = [await self.redis.execute_command(*batch[0][0])]  # type: ignore[no-untyped-call]
            else:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for args, _ in batch:
                        pipe.execute_command(*args)
                    results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed (or the task was cancelled): all of them
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._in_flight -= 1
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller went away
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def lua_source(*names: str) -> str:
    """The text of a script made of ``collabry.cache``'s Lua files, in order: libraries of local
    functions (``gcra.lua``, ``quota_take.lua``, ...) first, the script's body last."""
    files = resources.files("collabry.cache")
    return "\n".join(files.joinpath(name).read_text() for name in names)


class LuaScript:
    """A Lua script called by SHA: ``EVALSHA`` straight through ``execute_command`` (without
    redis-py's ``Script`` object and its per-call bookkeeping); a Redis that has forgotten it
    (restarted, ``SCRIPT FLUSH``) gets it loaded once and the call repeated."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()  # Redis' script id

    async def __call__(self, redis: Redis | AutoPipeline, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
