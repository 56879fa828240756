"""Schema 2: documents written by earlier versions (schema 1, on FerretDB 1.x) in today's shapes.

FerretDB 1.x could not apply a conditional update atomically, so schema 1 kept its limits as one
inserted document per unit and its revocations as inserted documents. On DocumentDB those are
single conditional updates (see ``counters``, ``sessions``); this step folds the old documents into
the new ones once, when ``migrate`` finds an older schema (for example right after
``collabry import-database`` from a 1.x install). Every write is idempotent (``$setOnInsert``,
``$max``, or conditional on the old state), so a rerun or two processes migrating at once give
the same result.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import structlog
from pymongo.errors import OperationFailure

from .client import Database

log = structlog.get_logger("collabry.migrate")

RETIRED_COLLECTIONS = ("quota_slots", "coupon_slots", "storage_ledger", "auth_revocations", "job_claims")
RETIRED_INDEXES = (("usage", "user_day_kind"),)
UNIT = {"n": {"$gt": 0}}  # schema 1's unit documents; its hint documents had n == 0


async def fold_schema_1(db: Database) -> dict[str, int]:
    """Fold every schema-1 document into its schema-2 form; how many of each kind were folded."""
    folded = {
        "usage": await _usage(db),
        "plan_counts": await _plan_counts(db),
        "coupons": await _coupon_redemptions(db),
        "storage_usage": await _storage(db),
        "auth_sessions": await _revocations(db),
        "ai_messages": await _citations(db),
    }
    for name in RETIRED_COLLECTIONS:
        await db.drop_collection(name)
    for collection, index in RETIRED_INDEXES:
        try:
            await db[collection].drop_index(index)
        except OperationFailure:
            pass  # never created, or already dropped
    log.info("schema_1_folded", **folded)
    return folded


async def _usage(db: Database) -> int:
    units: dict[tuple[str, str, str], int] = defaultdict(int)
    async for doc in db["usage"].find({"n": {"$exists": True}}, {"user_id": 1, "date": 1, "kind": 1, "n": 1}):
        if doc["n"] > 0:
            units[(doc["user_id"], doc["date"], doc["kind"])] += 1
    for (user_id, date, kind), used in units.items():
        await db["usage"].update_one(
            {"_id": f"{user_id}:{date}:{kind}"},
            {"$max": {"used": used}, "$setOnInsert": {"user_id": user_id, "date": date, "kind": kind}},
            upsert=True,
        )
    await db["usage"].delete_many({"n": {"$exists": True}})
    return len(units)


async def _plan_counts(db: Database) -> int:
    held: dict[tuple[str, str], list[str]] = defaultdict(list)
    async for doc in db["quota_slots"].find(UNIT, {"user_id": 1, "kind": 1, "resource_id": 1}):
        held[(doc["user_id"], doc["kind"])].append(doc["resource_id"])
    for (user_id, kind), resources in held.items():
        await db["plan_counts"].update_one(
            {"_id": f"{user_id}:{kind}"},
            {"$setOnInsert": {"user_id": user_id, "kind": kind, "used": len(resources), "held": resources}},
            upsert=True,
        )
    return len(held)


async def _coupon_redemptions(db: Database) -> int:
    counts: dict[str, int] = defaultdict(int)
    async for doc in db["coupon_slots"].find(UNIT, {"code": 1}):
        counts[doc["code"]] += 1
    await db["coupons"].update_many({"redemptions": {"$exists": False}}, {"$set": {"redemptions": 0}})
    for code, used in counts.items():
        await db["coupons"].update_one({"_id": code}, {"$max": {"redemptions": used}})
    return len(counts)


async def _storage(db: Database) -> int:
    totals: dict[str, tuple[int, int]] = {}
    sources: dict[str, dict[str, int]] = defaultdict(dict)
    async for entry in db["storage_ledger"].find({}).sort([("user_id", 1), ("seq", 1)]):
        user_id, op = entry["user_id"], str(entry.get("op", ""))
        totals[user_id] = (int(entry["seq"]), int(entry["total"]))
        kind, _, source_id = op.partition(":")
        if kind == "reserve":
            sources[user_id][source_id] = int(entry["delta"])
        elif kind == "release":
            sources[user_id].pop(source_id, None)
    for user_id, (_, total) in totals.items():
        await db["storage_usage"].update_one(
            {"_id": user_id}, {"$setOnInsert": {"bytes": total, "sources": sources[user_id]}}, upsert=True
        )
    return len(totals)


async def _revocations(db: Database) -> int:
    folded = 0
    async for doc in db["auth_revocations"].find({}):
        result = await db["auth_sessions"].update_one(
            {"_id": doc["_id"], "revoked_at": None},
            {"$set": {"revoked_at": doc.get("at"), "revoked_reason": doc.get("reason", "logout")}},
        )
        folded += result.modified_count
    return folded


API_CITATION_FIELDS = {"sourceId": "source_id", "chunkId": "chunk_id"}


async def _citations(db: Database) -> int:
    """Messages stored with the API's names for their sources (sourceId, chunkId) get the stored ones."""
    folded = 0
    async for doc in db["ai_messages"].find({"sources.sourceId": {"$exists": True}}, {"sources": 1}):
        sources = [{API_CITATION_FIELDS.get(k, k): v for k, v in source.items()} for source in doc["sources"]]
        result = await db["ai_messages"].update_one(
            {"_id": doc["_id"], "sources": doc["sources"]}, {"$set": {"sources": sources}}
        )
        folded += result.modified_count
    return folded


def needs_fold(meta: dict[str, Any] | None) -> bool:
    """Whether the database may hold schema-1 documents (a new, empty one costs a few empty reads)."""
    return meta is None or int(meta.get("version", 0)) < 2
