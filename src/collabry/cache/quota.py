"""Daily AI metering in Redis: one atomic script per check, persisted to the database behind it.

The counter of a (user, UTC day, kind) is a Redis hash ``{used, seq}``. ``take`` checks the
plan's limit and spends a unit in one script call (``quota.lua``), so any number of concurrent
callers on any replica spend at most ``limit - used`` units between them; ``give`` refunds one.
Every change bumps ``seq`` and adds the counter to a pending set; the database copy (``db.usage``)
is written off the request path by the gateway's write-behind (``domain.usage.UsageWriteBehind``)
and, as a backstop, by the worker's ``usage_persist`` job. The database applies a counter only when
its ``seq`` is higher than the one it holds (``DailyUsage.persist``): the value written is the
absolute count, never an increment, so a retried or repeated write cannot count a unit twice, and
a late write cannot overwrite a newer one.

A counter Redis does not hold (the first request of the day, or a Redis that restarted without
its data) answers "unknown": the caller reads the database's copy and seeds it (``seed`` writes
only a missing hash, so concurrent seeders agree), then asks again. Exactness across a restart
follows: Redis on the hosts keeps its data (AOF, ``deploy/redis-collabry.conf``), and after a
restart that lost it the database holds every unit the write-behind had persisted; only a unit
spent in the milliseconds between its ``take`` and its write-behind could be forgotten by a Redis
that lost its data, which errs in the student's favour (docs/domain.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from .client import lua_source
from .redis_keys import Keys

TTL_SECONDS = 2 * 86400  # a day's counter outlives its day (and the worker's last persist)


@dataclass(frozen=True, slots=True)
class Counter:
    user_id: str
    date: str
    kind: str

    @property
    def member(self) -> str:
        return f"{self.user_id}|{self.date}|{self.kind}"

    @classmethod
    def parse(cls, member: str | bytes) -> Counter:
        text = member.decode() if isinstance(member, bytes) else member
        user_id, date, kind = text.split("|")
        return cls(user_id, date, kind)


def _value(fields: list[bytes | str | None]) -> tuple[int, int] | None:
    """A counter hash's (used, seq) as ``HMGET`` returns them; None when Redis does not hold it."""
    used, seq = fields
    return None if used is None else (int(used), int(seq or 0))


class QuotaCounters:
    """The Redis side of the daily metering (see the module's docstring)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._script: AsyncScript = redis.register_script(lua_source("quota_take.lua", "quota.lua"))

    def keys_of(self, counter: Counter) -> list[str]:
        """The counter's hash and the pending set: the keys a script spending from it needs."""
        return [self.keys.quota(counter.user_id, counter.date, counter.kind), self.keys.quota_pending()]

    async def take(self, counter: Counter, limit: int) -> bool | None:
        """Spend one unit if fewer than ``limit`` are spent; None when Redis does not know the counter."""
        raw = int(await self._script(keys=self.keys_of(counter), args=["take", limit, counter.member]))
        return None if raw < 0 else raw == 1

    async def give(self, counter: Counter) -> bool | None:
        """Refund one unit; False when none was spent, None when Redis does not know the counter."""
        raw = int(await self._script(keys=self.keys_of(counter), args=["give", 0, counter.member]))
        return None if raw < 0 else raw == 1

    async def seed(self, counter: Counter, used: int, seq: int) -> bool:
        """Create a missing counter from the database's copy; False when it exists already."""
        return bool(await self._script(keys=self.keys_of(counter), args=["seed", used, seq, TTL_SECONDS]))

    async def read(self, counter: Counter) -> tuple[int, int] | None:
        """(used, seq), or None when Redis does not hold the counter."""
        return _value(await self.redis.hmget(self.keys_of(counter)[0], "used", "seq"))

    async def read_many(self, counters: Sequence[Counter]) -> list[tuple[int, int] | None]:
        """``read`` for each counter, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for counter in counters:
                pipe.hmget(self.keys_of(counter)[0], "used", "seq")
            replies = await pipe.execute()
        return [_value(reply) for reply in replies]

    async def persisted_many(self, counters: Sequence[tuple[Counter, int]]) -> None:
        """For each ``(counter, seq)``: the database holds ``seq``, so the counter leaves the pending
        set unless it changed since. One round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for counter, seq in counters:
                await self._script(keys=self.keys_of(counter), args=["persisted", counter.member, seq], client=pipe)
            await pipe.execute()

    async def pending(self, count: int = 500) -> list[Counter]:
        """The counters changed since their last persist (all replicas')."""
        return [Counter.parse(m) async for m in self.redis.sscan_iter(self.keys.quota_pending(), count=count)]
