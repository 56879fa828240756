"""The head of each user's index log (seq, model, dim) mirrored in Redis, so the freshness check
before a search is one Redis GET instead of a database read (``cache/index_head.lua`` keeps it as
one string, ``<seq>|<writers>|<dim>|<model>``, changed only by the script).

- **Writers** (``IndexLog.commit`` on any replica, and ``collabry index rebuild``) wrap the
  database's compare-and-set in ``writing``: before it, the mirrored head's ``writers`` count goes
  up, which sends readers to the database; after it, the count goes down and the committed head is stored if
  it is higher than the one there. Several writers, in any order, leave the highest head.
- **Readers** (``IndexLog.head``) take the Redis head only when it is there and no writer is under
  way; otherwise (no value, e.g. after a Redis restart; a writer in the middle of a commit; Redis
  unreachable) they read the database, as before, and seed Redis with what they read (``seed``
  applies only while no writer is under way, and only raises the head).

So a reader never sees a head older than the database's as of a commit that finished before its
search began: the commit raised the Redis head before it returned, or its writer count is still up,
or Redis lost the key and the database is read. A writer that dies between ``begin`` and ``end``
leaves its count up: readers of that user go to the database until the key expires (``TTL``).
A head in Redis that is ahead of the database (a database restored to an earlier state) is dropped
by the store when its catch-up finds the database behind it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import TypeVar

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ...cache.client import REDIS_ERRORS
from ...cache.redis_keys import Keys

log = structlog.get_logger("collabry.index")

TTL = 600  # seconds; refreshed by every write and seed

Head = tuple[int, str, int]  # seq, model, dim
T = TypeVar("T")


class IndexHeads:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._script: AsyncScript = redis.register_script(
            resources.files("collabry.cache").joinpath("index_head.lua").read_text()
        )

    async def get(self, user_id: str) -> Head | None:
        """The head, or None when the database must be asked (missing, a writer under way, Redis down)."""
        try:
            raw = await self.redis.get(self.keys.index_head(user_id))
        except REDIS_ERRORS as exc:
            log.warning("index_head_unavailable", error=str(exc))
            return None
        return _parse(raw)

    async def get_around(self, user_id: str, work: Callable[[], T]) -> tuple[Head | None, T]:
        """``get`` with ``work()`` run on the loop while Redis answers: the GET is written before
        ``work`` starts and its answer read after ``work`` ends, so a short search costs no round
        trip of its own (``IndexStore.search``). Same answers as ``get``; ``work`` runs exactly once."""
        pool = self.redis.connection_pool
        try:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        except REDIS_ERRORS as exc:
            log.warning("index_head_unavailable", error=str(exc))
            return None, work()
        in_step = False  # every answer on the connection read: it may be reused
        try:
            try:
                await connection.send_command("GET", self.keys.index_head(user_id))
            except REDIS_ERRORS as exc:
                log.warning("index_head_unavailable", error=str(exc))
                return None, work()
            result = work()
            try:
                raw = await connection.read_response()
            except REDIS_ERRORS as exc:
                log.warning("index_head_unavailable", error=str(exc))
                return None, result
            in_step = True
        finally:
            if not in_step:
                await connection.disconnect()
            await pool.release(connection)
        return _parse(raw), result

    async def seed(self, user_id: str, head: Head) -> None:
        with contextlib.suppress(*REDIS_ERRORS):  # the next reader asks the database again
            await self._script(keys=[self.keys.index_head(user_id)], args=["seed", TTL, *head])

    @contextlib.asynccontextmanager
    async def writing(self, user_id: str) -> AsyncIterator[list[Head]]:
        """Around a commit; the caller appends the committed head to the yielded list."""
        key = [self.keys.index_head(user_id)]
        await self._script(keys=key, args=["begin", TTL])
        committed: list[Head] = []
        try:
            yield committed
        finally:
            head = committed[-1] if committed else (0, "", 0)
            await self._script(keys=key, args=["end", TTL, "1" if committed else "0", *head])

    async def drop(self, user_id: str) -> None:
        """Forget the mirrored head (the user is erased, or the database is behind it)."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.delete(self.keys.index_head(user_id))


def _parse(raw: bytes | str | None) -> Head | None:
    if raw is None:
        return None
    seq, writers, dim, model = (raw.decode() if isinstance(raw, bytes) else str(raw)).split("|", 3)
    if int(seq) < 0 or int(writers) > 0:
        return None
    return int(seq), model, int(dim)
