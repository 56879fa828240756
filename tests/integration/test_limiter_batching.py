"""The limiter's calls share pipelined writes when they are concurrent (cache/client.py
``AutoPipeline``): each still gets its own, exact decision, and a Redis that forgot the scripts
(``SCRIPT FLUSH``, a restart) gets them again without a failed check."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from collabry.cache.client import create_redis
from collabry.cache.ratelimit import RateLimiter
from collabry.config import Rule, Settings


async def test_concurrent_checks_are_exact_and_survive_a_script_flush(settings: Settings) -> None:
    redis: Redis = create_redis(settings)
    try:
        limiter = RateLimiter(redis, settings)
        rule = Rule(10, 60)
        await redis.script_flush()  # the first batch meets NOSCRIPT
        decisions = await asyncio.gather(*(limiter.hit("batch", "subject", rule) for _ in range(25)))
        assert sum(d.allowed for d in decisions) == 10
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))
        assert all(d.retry_after > 0 for d in decisions if not d.allowed)

        await redis.set(limiter.keys.revoked_session("gone"), "logout")
        checks = await asyncio.gather(
            *(limiter.check_request("global", f"ip{i}", rule, session_id="gone" if i % 2 else "live")
              for i in range(20))
        )
        assert [c.revoked for c in checks] == [bool(i % 2) for i in range(20)]
        assert all(c.decision.allowed and c.decision.remaining == 9 for c in checks)
    finally:
        await redis.aclose()
