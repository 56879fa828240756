"""A short-lived copy of each user's public document, for ``GET /api/auth/me`` without a
database read.

Keys: ``user-gen:<id>`` (a generation counter, bumped on every change) and ``user-doc:<id>``
(``<generation>|<public user JSON>``, expiring after ``TTL_MS``). The request's one Redis script
(``request.lua``, with the rate limit and the revocation check) returns the document only when it
was written under the current generation, and the generation it saw.

Invalidation bumps the generation (and deletes the document) *after* the database write. A reader
that missed reads the database and then writes the copy only if the generation is still the one
it saw before its read (``user_fill.lua``, atomic in Redis). That closes the race where a slow
reader, holding a document read before a change, puts it back after the change's invalidation:
its generation is stale by then, so the write is refused. A plain delete-on-change would not
(the stale write lands after the delete and lives for the whole TTL). The generation key lives a
day past its last change; if it expires, documents tagged with the old generation no longer match.

Every place that changes the public user (name, password, email verification, plan, erasure,
logout) calls ``user_changed``: the processes register their Redis client here at start-up
(``registered``), since plan changes happen in the billing domain, which holds no Redis client.
If Redis cannot be told, the copy is at most ``TTL_MS`` old.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources

import structlog
from redis.asyncio import Redis

from ..config import Settings
from .client import REDIS_ERRORS, LuaScript
from .redis_keys import Keys

log = structlog.get_logger("collabry.cache")

TTL_MS = 60_000
GENERATION_TTL_S = 86_400

_FILL = LuaScript(resources.files("collabry.cache").joinpath("user_fill.lua").read_text())


class UserCache:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.keys = Keys(settings.redis_prefix)

    def key_pair(self, user_id: str) -> tuple[str, str]:
        return self.keys.user_generation(user_id), self.keys.user_document(user_id)

    async def fill(self, user_id: str, generation: str, document: bytes) -> bool:
        """Store ``document`` unless the user changed since ``generation`` was read."""
        try:
            return bool(await _FILL(self.redis, self.key_pair(user_id), [generation, document, TTL_MS]))
        except REDIS_ERRORS as exc:
            log.warning("user_cache_fill_failed", error=str(exc))
            return False

    async def invalidate(self, user_id: str) -> None:
        gen, doc = self.key_pair(user_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(gen)
                pipe.expire(gen, GENERATION_TTL_S)
                pipe.delete(doc)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            log.error("user_cache_invalidation_failed", user_id=user_id, error=str(exc))


_REGISTERED: list[UserCache] = []


@contextlib.contextmanager
def registered(cache: UserCache) -> Iterator[UserCache]:
    """While open, ``user_changed`` invalidates through ``cache`` (one per process's Redis client)."""
    _REGISTERED.append(cache)
    try:
        yield cache
    finally:
        _REGISTERED.remove(cache)


async def user_changed(user_id: str) -> None:
    """Call after the database write that changed what ``public_user`` shows for ``user_id``."""
    for cache in list(_REGISTERED):
        await cache.invalidate(user_id)
