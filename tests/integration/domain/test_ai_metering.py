"""AI requests are metered in Redis (one script per check) and persisted to the database behind
the request: exact under concurrency, across a Redis restart that loses Redis' data, and the
database ends up with the value."""

from __future__ import annotations

import asyncio
import random

from pymongo import AsyncMongoClient, monitoring

from collabry.cache.quota import Counter
from collabry.db.client import new_id
from collabry.db.usage import DailyUsage
from collabry.domain import usage
from collabry.gateway.keys import QUOTA, USAGE_WRITER
from tests.support.eventually import eventually


def metered(api):  # type: ignore[no-untyped-def]
    return api.app[QUOTA]


async def persisted(db, user_id: str) -> int:  # type: ignore[no-untyped-def]
    return (await DailyUsage(db).snapshot(user_id, usage.today(), "ai"))[0]


async def test_fifty_concurrent_requests_at_a_limit_of_ten_spend_exactly_ten(api, db, alice):
    quota = metered(api)
    results = await asyncio.gather(*[usage.take_metered(db, quota, alice["id"], "ai", 10) for _ in range(50)])
    assert results.count(True) == 10
    assert await usage.used_metered(db, quota, alice["id"], "ai") == 10
    assert await persisted(db, alice["id"]) == 0  # nothing written on the request path
    api.app[USAGE_WRITER].changed(alice["id"], "ai")

    async def written() -> bool:
        return await persisted(db, alice["id"]) == 10 and await quota.pending() == []

    await eventually(written, 10, "the write-behind to persist the counter and clear it from the pending set")


async def test_parallel_refunds_never_give_back_the_same_unit(api, db, alice):
    quota = metered(api)
    assert all(await asyncio.gather(*[usage.take_metered(db, quota, alice["id"], "ai", 10) for _ in range(6)]))
    refunds = await asyncio.gather(*[usage.refund_metered(db, quota, alice["id"], "ai") for _ in range(10)])
    assert refunds.count(True) == 6
    assert await usage.used_metered(db, quota, alice["id"], "ai") == 0


async def test_the_first_unit_of_the_day_continues_from_the_database_copy(api, db, alice):
    for _ in range(7):  # spent before Redis knew the counter (or persisted by another day's Redis)
        assert await usage.consume(db, alice["id"], "ai", 10)
    results = await asyncio.gather(*[usage.take_metered(db, metered(api), alice["id"], "ai", 10) for _ in range(9)])
    assert results.count(True) == 3


async def test_a_redis_restart_neither_loses_nor_double_counts_persisted_units(api, db, alice, infra):
    quota, uid = metered(api), alice["id"]
    assert all(await asyncio.gather(*[usage.take_metered(db, quota, uid, "ai", 10) for _ in range(6)]))
    assert await usage.persist_pending(db, quota) == 1  # the worker's job
    assert await usage.persist_pending(db, quota) == 0  # nothing pending twice
    assert await persisted(db, uid) == 6
    infra.restart_redis()  # the test Redis keeps no data: every counter is gone

    await quota.redis.connection_pool.disconnect()  # the pooled sockets of the old server
    # seeded with 6 from the database: this is the 7th
    assert await usage.take_metered(db, quota, uid, "ai", 10) is True
    results = await asyncio.gather(*[usage.take_metered(db, quota, uid, "ai", 10) for _ in range(20)])
    assert results.count(True) == 3  # 10 in all, not 6 + 10 and not 10 + 10
    # Persisting the same counter again, or an older change of it, does not count twice.
    await usage.persist_pending(db, quota)
    await usage.persist(db, quota, [Counter(uid, usage.today(), "ai")])
    assert await persisted(db, uid) == 10
    assert await DailyUsage(db).persist(uid, usage.today(), "ai", 6, 6) is False
    assert await persisted(db, uid) == 10


async def test_usage_reports_the_redis_counter_before_it_is_persisted(api, db, alice):
    for _ in range(4):
        assert await usage.take_metered(db, metered(api), alice["id"], "ai", 10)
    resp = await api.get("/api/usage", headers=alice["headers"])
    assert resp.status == 200
    assert (await resp.json())["used"]["ai"] == 4


class Updates(monitoring.CommandListener):
    """The ``update`` commands a database client sends (each carries one or more statements)."""

    def __init__(self) -> None:
        self.statements: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update" and event.command.get("update") == "usage":
            self.statements.append(len(event.command["updates"]))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_many_counters_are_persisted_in_one_database_request(api, db, infra, db_name):
    quota, updates = metered(api), Updates()
    watched = AsyncMongoClient(infra.mongo_uri, event_listeners=[updates])
    try:
        users = [new_id() for _ in range(20)]
        for uid in users:
            assert await usage.take_metered(db, quota, uid, "ai", 10)
        counters = [Counter(uid, usage.today(), "ai") for uid in users]
        assert await usage.persist(watched[db_name], quota, counters) == 20
        assert updates.statements == [20]
        assert [await persisted(db, uid) for uid in users] == [1] * 20
        assert await quota.pending() == []
        # Again, with one of them newer: only that one is written (the rest hold this change already).
        assert await usage.take_metered(db, quota, users[3], "ai", 10)
        assert await usage.persist(watched[db_name], quota, counters) == 1
        assert updates.statements == [20, 20]
        assert await persisted(db, users[3]) == 2
    finally:
        await watched.close()


async def test_the_write_behind_writes_a_burst_of_answers_together(api, db, infra, db_name):
    quota, updates = metered(api), Updates()
    watched = AsyncMongoClient(infra.mongo_uri, event_listeners=[updates])
    writer = usage.UsageWriteBehind(watched[db_name], quota, coalesce=0.3)
    writer.start()
    try:
        users = [new_id() for _ in range(12)]
        for uid in users:  # twelve answers...
            assert await usage.take_metered(db, quota, uid, "ai", 10)
        for uid in users:  # ...and their requests' notices, all within the writer's window
            writer.changed(uid, "ai")

        async def written() -> bool:
            return [await persisted(db, uid) for uid in users] == [1] * 12

        await eventually(written, 10, "the write-behind to persist the burst")
        assert updates.statements == [12]  # one request for the burst, not one per answer
    finally:
        await writer.close()
        await watched.close()


async def test_the_write_behind_closes_at_any_moment_and_loses_nothing(api, db):
    """Closed at random points of its work, many times over: each close must end (a cancel lost in
    redis-py's write must not keep the loop alive) and the counter changed just before it must be
    in the database (a write cut short by the close is done again by the close)."""
    quota = metered(api)
    for i in range(150):
        uid = new_id()
        assert await usage.take_metered(db, quota, uid, "ai", 10)
        writer = usage.UsageWriteBehind(db, quota, coalesce=0)
        writer.start()
        writer.changed(uid, "ai")
        await asyncio.sleep(random.uniform(0, 0.004))
        await asyncio.wait_for(writer.close(), 10)
        assert await persisted(db, uid) == 1, f"close {i} lost the counter"
