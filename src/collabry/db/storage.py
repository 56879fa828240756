"""Bytes stored per user (collection ``storage_usage``): one document per user.

``{_id: user_id, bytes, sources: {<source id>: size}, updated_at}``. A reservation is one
conditional update: it matches only while the total stays within the limit and the source is not
counted yet, and adds the size and the source together; a release matches only while the source
is counted, so a repeated release subtracts once.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from .client import Database, utcnow
from .queries import Filter, query

COLLECTION = "storage_usage"


@query(COLLECTION, example=("u1",))
def user_total(user_id: str) -> Filter:
    return {"_id": user_id}


@query(COLLECTION, example=("u1", "s1"))
def counting(user_id: str, source_id: str) -> Filter:
    return {"_id": user_id, f"sources.{source_id}": {"$exists": True}}


class StorageUsage:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def used_bytes(self, user_id: str) -> int:
        doc = await self.coll.find_one(user_total(user_id), {"bytes": 1})
        return int(doc.get("bytes", 0)) if doc else 0

    async def reserve(self, user_id: str, source_id: str, size: int, limit: int) -> bool:
        """Count ``size`` bytes for ``source_id`` if the total stays within ``limit``; True when it is
        counted (now or already)."""
        if size > limit:
            return False
        await self._ensure(user_id)
        result = await self.coll.update_one(
            {**user_total(user_id), "bytes": {"$lte": limit - size}, f"sources.{source_id}": {"$exists": False}},
            {"$inc": {"bytes": size}, "$set": {f"sources.{source_id}": size, "updated_at": utcnow()}},
        )
        if result.modified_count == 1:
            return True
        return await self.coll.find_one(counting(user_id, source_id), {"_id": 1}) is not None

    async def release(self, user_id: str, source_id: str) -> None:
        """Stop counting a source's bytes (the size recorded at its reservation)."""
        doc = await self.coll.find_one(counting(user_id, source_id), {f"sources.{source_id}": 1})
        if doc is None:
            return  # never counted, or already released
        size = int(doc["sources"][source_id])
        await self.coll.update_one(
            {**counting(user_id, source_id), f"sources.{source_id}": size},
            {"$inc": {"bytes": -size}, "$unset": {f"sources.{source_id}": ""}, "$set": {"updated_at": utcnow()}},
        )

    async def _ensure(self, user_id: str) -> None:
        try:
            await self.coll.update_one(
                user_total(user_id), {"$setOnInsert": {"bytes": 0, "sources": {}, "updated_at": utcnow()}}, upsert=True
            )
        except DuplicateKeyError:  # created by a concurrent first reservation
            pass
