"""A database written by schema 1 (FerretDB 1.x: one document per unit, inserted revocations)
keeps its counts, reservations and revocations after ``migrate``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collabry.db.migrations import SCHEMA_VERSION, migrate
from collabry.db.plan_counts import PlanCounts
from collabry.db.storage import StorageUsage
from collabry.db.usage import DailyUsage
from collabry.domain import coupons

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


async def _schema_1(db: Any) -> None:
    await db["meta"].insert_one({"_id": "schema", "version": 1})
    day = "2026-12-04"
    await db["usage"].insert_many(
        [{"_id": f"u1:{day}:ai:{n}", "user_id": "u1", "date": day, "kind": "ai", "n": n} for n in (1, 2, 3)]
        + [{"_id": f"u1:{day}:ai:top", "user_id": "u1", "date": day, "kind": "ai", "n": 0, "top": 3}]
    )
    await db["quota_slots"].insert_many([
        {"_id": "u1:boards:1", "user_id": "u1", "kind": "boards", "n": 1, "resource_id": "b1"},
        {"_id": "u1:boards:2", "user_id": "u1", "kind": "boards", "n": 2, "resource_id": "b2"},
        {"_id": "u1:boards:top", "user_id": "u1", "kind": "boards", "n": 0, "top": 2},
    ])
    await db["coupons"].insert_one({"_id": "SPRING", "percent": 10, "max_redemptions": 3})
    await db["coupon_slots"].insert_many([
        {"_id": "coupon:SPRING:1", "code": "SPRING", "n": 1}, {"_id": "coupon:SPRING:2", "code": "SPRING", "n": 2},
    ])
    await db["storage_ledger"].insert_many([
        {"_id": "u1:000000000001", "user_id": "u1", "seq": 1, "total": 300, "delta": 300, "op": "reserve:s1"},
        {"_id": "u1:000000000002", "user_id": "u1", "seq": 2, "total": 800, "delta": 500, "op": "reserve:s2"},
        {"_id": "u1:000000000003", "user_id": "u1", "seq": 3, "total": 500, "delta": -300, "op": "release:s1"},
    ])
    await db["auth_sessions"].insert_many([
        {"_id": "gone", "user_id": "u1", "revoked_at": None, "expires_at": NOW + timedelta(days=1)},
        {"_id": "live", "user_id": "u1", "revoked_at": None, "expires_at": NOW + timedelta(days=1)},
    ])
    await db["auth_revocations"].insert_one({"_id": "gone", "user_id": "u1", "reason": "logout", "at": NOW})
    await db["ai_messages"].insert_one({"_id": "m1", "session_id": "c1", "user_id": "u1", "role": "assistant",
                                        "sources": [{"sourceId": "s1", "title": "T", "chunkId": "k1", "score": 0.5,
                                                     "text": "passage", "page": 3}]})


async def test_schema_1_documents_are_folded_into_counters(db: Any) -> None:
    await _schema_1(db)
    await migrate(db)
    await migrate(db)  # a second run changes nothing

    assert await DailyUsage(db).used("u1", "2026-12-04", "ai") == 3
    assert await db["usage"].count_documents({}) == 1
    assert await DailyUsage(db).take("u1", "2026-12-04", "ai", 4)
    assert not await DailyUsage(db).take("u1", "2026-12-04", "ai", 4)

    plan_counts = PlanCounts(db)
    assert await plan_counts.held("u1", "boards") == 2
    assert await plan_counts.take("u1", "boards", "b2", 2)  # already counted
    assert not await plan_counts.take("u1", "boards", "b3", 2)

    assert coupons.redemptions(await db["coupons"].find_one({"_id": "SPRING"})) == 2

    storage = StorageUsage(db)
    assert await storage.used_bytes("u1") == 500
    await storage.release("u1", "s1")  # released under schema 1 already: no change
    assert await storage.used_bytes("u1") == 500
    await storage.release("u1", "s2")
    assert await storage.used_bytes("u1") == 0

    sessions = {doc["_id"]: doc async for doc in db["auth_sessions"].find()}
    assert sessions["gone"]["revoked_at"] == NOW and sessions["live"]["revoked_at"] is None
    message = await db["ai_messages"].find_one({"_id": "m1"})
    assert message["sources"] == [{"source_id": "s1", "title": "T", "chunk_id": "k1", "score": 0.5, "text": "passage",
                                   "page": 3}]
    remaining = set(await db.list_collection_names())
    assert not remaining & {"quota_slots", "coupon_slots", "storage_ledger", "auth_revocations"}
    assert (await db["meta"].find_one({"_id": "schema"}))["version"] == SCHEMA_VERSION


async def test_migrate_drops_the_indexes_a_new_one_replaced(db: Any) -> None:
    await db["notebooks"].create_index([("user_id", 1), ("deleted_at", 1)], name="user_live")
    await db["sources"].create_index([("notebook_id", 1), ("user_id", 1), ("deleted_at", 1)], name="notebook")
    await migrate(db)
    replaced = (("notebooks", "user_live", "user_live_ordered"), ("sources", "notebook", "user_notebook"))
    for collection, gone, kept in replaced:
        names = {index["name"] async for index in await db[collection].list_indexes()}
        assert gone not in names and kept in names, names
    await migrate(db)  # nothing left to drop: no error
