"""Metering: a unit is spent by the request that passes the check and by no other; concurrent
requests cannot exceed the limit; refused requests leave no trace."""

from __future__ import annotations

import asyncio

from collabry.db.plan_counts import PlanCounts
from collabry.domain import policy, quotas, storage, usage


async def test_fifty_parallel_ai_consumptions_against_ten_give_exactly_ten(db, alice):
    results = await asyncio.gather(*[usage.consume(db, alice["id"], "ai", 10) for _ in range(50)])
    assert results.count(True) == 10
    assert await usage.used(db, alice["id"], "ai") == 10
    # refused requests did not count: one refund frees exactly one unit
    assert await usage.refund(db, alice["id"], "ai") is True
    assert await usage.used(db, alice["id"], "ai") == 9
    assert await usage.consume(db, alice["id"], "ai", 10) is True
    assert await usage.consume(db, alice["id"], "ai", 10) is False
    assert await usage.used(db, alice["id"], "ai") == 10


async def test_parallel_refunds_never_give_back_the_same_unit(db, alice):
    assert all(await asyncio.gather(*[usage.consume(db, alice["id"], "ai", 10) for _ in range(6)]))
    refunds = await asyncio.gather(*[usage.refund(db, alice["id"], "ai") for _ in range(10)])
    assert refunds.count(True) == 6
    assert await usage.used(db, alice["id"], "ai") == 0


async def test_holes_left_by_refunds_are_reused_and_the_limit_still_holds(db, alice):
    for _ in range(10):
        assert await usage.consume(db, alice["id"], "ai", 10)
    # refund the highest, then take it and the rest of the room in parallel
    await usage.refund(db, alice["id"], "ai")
    await usage.refund(db, alice["id"], "ai")
    results = await asyncio.gather(*[usage.consume(db, alice["id"], "ai", 10) for _ in range(20)])
    assert results.count(True) == 2
    assert await usage.used(db, alice["id"], "ai") == 10


async def test_kinds_users_and_days_are_separate(db, alice, bob):
    assert await usage.consume(db, alice["id"], "ai", 1)
    assert not await usage.consume(db, alice["id"], "ai", 1)
    assert await usage.consume(db, alice["id"], "uploads", 1)
    assert await usage.consume(db, bob["id"], "ai", 1)
    assert await usage.consume(db, alice["id"], "ai", 1, date="2031-01-01")
    assert await usage.consume(db, alice["id"], "ai", 0) is False


async def test_a_lowered_limit_is_respected(db, alice):
    # a downgrade mid-day: 5 spent under a limit of 8, the new limit is 3
    for _ in range(5):
        assert await usage.consume(db, alice["id"], "ai", 8)
    assert not await usage.consume(db, alice["id"], "ai", 3)
    assert await usage.used(db, alice["id"], "ai") == 5


async def test_storage_never_overshoots_under_concurrency(db, alice):
    sizes = [300] * 20  # 6,000 bytes asked against 1,000
    results = await asyncio.gather(*[
        storage.reserve(db, alice["id"], f"s{i}", size, 1000) for i, size in enumerate(sizes)
    ])
    assert results.count(True) == 3
    assert await storage.used_bytes(db, alice["id"]) == 900
    granted = [f"s{i}" for i, ok in enumerate(results) if ok]
    # releasing twice counts once
    await asyncio.gather(*[storage.release(db, alice["id"], granted[0]) for _ in range(2)])
    assert await storage.used_bytes(db, alice["id"]) == 600
    await storage.release(db, alice["id"], "never-reserved")
    assert await storage.used_bytes(db, alice["id"]) == 600


async def test_usage_endpoint_reports_today_against_the_plan(api, db, alice):
    for _ in range(3):
        await usage.consume(db, alice["id"], "ai", 10)
    await api.post("/api/boards", json={"title": "b"}, headers=alice["headers"])
    resp = await api.get("/api/usage", headers=alice["headers"])
    assert resp.status == 200
    body = await resp.json()
    assert body["date"] == usage.today() and body["plan"] == "free"
    assert body["used"] == {"ai": 3, "uploads": 0, "storageBytes": 0, "boards": 1, "notebooks": 0}
    assert body["limits"] == {"aiPerDay": 10, "uploadsPerDay": 4, "storageBytes": 65536, "boards": 3, "notebooks": 3}


async def test_plan_counts_hold_under_concurrency_and_count_a_resource_once(db, alice):
    who = await policy.actor(db, alice["id"])
    limits = {"boards": 3}
    results = await asyncio.gather(*[
        PlanCounts(db).take(who.user_id, "boards", f"b{i}", limits["boards"]) for i in range(50)
    ])
    assert results.count(True) == 3
    assert await quotas.held(db, alice["id"], "boards") == 3
    held = [f"b{i}" for i, ok in enumerate(results) if ok]
    # the same resource taken again (a repeated restore) is already counted, even when full
    assert all(await asyncio.gather(*[PlanCounts(db).take(who.user_id, "boards", held[0], 3) for _ in range(10)]))
    assert await quotas.held(db, alice["id"], "boards") == 3
    # giving one back twice frees one place
    await asyncio.gather(*[quotas.give_back(db, alice["id"], "boards", held[0]) for _ in range(5)])
    assert await quotas.held(db, alice["id"], "boards") == 2
    assert await PlanCounts(db).take(who.user_id, "boards", "another", 3)
    assert not await PlanCounts(db).take(who.user_id, "boards", "one-too-many", 3)
