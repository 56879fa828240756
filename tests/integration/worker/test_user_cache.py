"""A plan change made by the worker (another process than the gateways) drops the user's cached
public user, the copy `GET /api/auth/me` and the AI quota read (cache/users.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from collabry.cache.users import UserCache
from collabry.config import Settings

from .conftest import schedules, stamp
from .seed import add_subscription, add_user

NOW = datetime(2030, 2, 1, 12, 0, 10, tzinfo=UTC)


async def test_a_downgrade_by_the_worker_drops_the_cached_user(db: Any, run_worker: Any, infra: Any) -> None:
    user = await add_user(db, plan="pro")
    await add_subscription(db, user["_id"], plan="pro", status="active",
                           period_end=NOW.replace(second=0) - timedelta(minutes=1), cancel=True)
    redis = Redis.from_url(infra.redis_url)
    try:
        cache = UserCache(redis, Settings())  # the prefix every process of the test uses
        gen_key, doc_key = cache.key_pair(user["_id"])
        generation = (await redis.get(gen_key) or b"0").decode()
        assert await cache.fill(user["_id"], generation, b'{"plan":"pro"}')  # what a gateway cached

        result = run_worker("run-due", "--now", stamp(NOW),
                            extra_env={"COLLABRY_WORKER_SCHEDULES": schedules(subscriptions="*/5 * * * *")})
        assert result.returncode == 0, result.stderr
        assert [line["items"]["cancellations"] for line in result.lines("job_run")] == [1]

        assert (await db["users"].find_one({"_id": user["_id"]}))["plan"] == "free"
        assert await redis.get(doc_key) is None  # the copy is gone ...
        assert (await redis.get(gen_key) or b"0").decode() != generation  # ... and cannot come back stale
    finally:
        await redis.aclose()
