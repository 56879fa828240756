"""The limiter's calls share pipelined writes when they are concurrent (cache/client.py
``AutoPipeline``): each still gets its own, exact decision, and a Redis that forgot the scripts
(``SCRIPT FLUSH``, a restart) gets them again without a failed check. A metered AI request's one
script also spends its AI rule and quota unit."""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis

from collabry.cache.client import create_redis
from collabry.cache.quota import Counter, QuotaCounters
from collabry.cache.ratelimit import MeteredAI, RateLimiter, RequestCheck
from collabry.cache.users import UserCache
from collabry.config import Plan, PlanLimits, Rule, Settings


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


async def test_a_metered_ai_request_spends_its_rule_and_unit_in_the_request_script(settings: Settings) -> None:
    """``check_request`` with ``MeteredAI``: the AI rule and one unit of today's counter against the
    limit of the plan in the user's cached copy, only when the global rule allowed, the session
    stands and the copy is current."""
    plans = (
        Plan("free", "Free", 0, PlanLimits(2, 1, 1, 1, 1)),
        Plan("pro", "Pro", 100, PlanLimits(3, 1, 1, 1, 1)),
    )
    settings = settings.with_overrides(plans=plans)
    redis: Redis = create_redis(settings)
    try:
        limiter = RateLimiter(redis, settings)
        users = UserCache(redis, settings)
        quota = QuotaCounters(redis, limiter.keys)
        generous, one_per_minute = Rule(100, 60), Rule(1, 60)

        async def check(user: str, ai_rule: Rule = generous, session: str = "live") -> RequestCheck:
            counter = Counter(user, "2026-12-05", "ai")
            hash_key, pending_key = quota.keys_of(counter)
            return await limiter.check_request(
                "global", "ip", generous, session_id=session, user_keys=users.key_pair(user),
                metered=MeteredAI("ai", user, ai_rule, (hash_key, pending_key), counter.member),
            )

        # No current copy of the user: the script cannot know the plan and leaves the AI part to the route.
        cold = await check("u-free")
        assert cold.ai_decision is None and cold.ai_unit is None and cold.user_document is None
        assert cold.generation is not None
        for user, plan in (("u-free", "free"), ("u-pro", "pro")):
            generation = (await check(user)).generation
            assert generation is not None
            assert await users.fill(user, generation, json.dumps({"id": user, "plan": plan}).encode())
        # A copy but no counter yet (the day's first unit): the route seeds it from the database.
        first = await check("u-free")
        assert first.ai_decision is not None and first.ai_decision.allowed and first.ai_unit == -1
        for user in ("u-free", "u-pro"):
            assert await quota.seed(Counter(user, "2026-12-05", "ai"), 0, 0)
        # Each plan's own daily limit, exactly.
        assert [(await check("u-free")).ai_unit for _ in range(4)] == [1, 1, 0, 0]
        assert [(await check("u-pro")).ai_unit for _ in range(4)] == [1, 1, 1, 0]
        assert await quota.read(Counter("u-pro", "2026-12-05", "ai")) == (3, 3)
        assert "u-pro|2026-12-05|ai" in {c.member for c in await quota.pending()}
        # The AI rule refuses: no unit is spent.
        assert await quota.give(Counter("u-pro", "2026-12-05", "ai"))
        await redis.delete(limiter.keys.limit("ai", "u-pro"))  # the generous rule's history
        allowed, refused = await check("u-pro", one_per_minute), await check("u-pro", one_per_minute)
        assert allowed.ai_decision is not None and allowed.ai_decision.allowed and allowed.ai_unit == 1
        assert refused.ai_decision is not None and not refused.ai_decision.allowed and refused.ai_unit == 0
        assert refused.ai_decision.retry_after > 0
        # A revoked session spends nothing.
        await redis.set(limiter.keys.revoked_session("gone"), "logout")
        assert await quota.give(Counter("u-free", "2026-12-05", "ai"))
        revoked = await check("u-free", session="gone")
        assert revoked.revoked and revoked.ai_decision is None
        assert await quota.read(Counter("u-free", "2026-12-05", "ai")) == (1, 3)
    finally:
        await redis.aclose()
