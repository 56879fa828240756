"""Each user's index log (collection ``index_state``), one document per user:

``{_id: user_id, seq, next_vid, model, dim, sources: {source_id: ingest_id}, log: [...]}``
(the meaning is in ``engine.index.state``). Both writes are single-document updates, atomic on
DocumentDB and MongoDB: the vector-id allocation is one ``$inc`` and a commit is a compare-and-set
on ``seq``, so writers on several engine replicas need no lock.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from .client import Database
from .queries import Filter, query

COLLECTION = "index_state"
EMPTY = {"seq": 0, "next_vid": 0, "model": "", "dim": 0, "sources": {}, "log": []}


@query(COLLECTION, example=("u1",))
def user_state(user_id: str) -> Filter:
    return {"_id": user_id}


@query(COLLECTION, example=("u1", 7))
def user_state_at(user_id: str, seq: int) -> Filter:
    return {"_id": user_id, "seq": seq}


@query(COLLECTION, example=(), full_scan="the offline `collabry index` commands visit every user")
def every_user() -> Filter:
    return {}


class IndexStates:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def get(self, user_id: str, fields: tuple[str, ...] = ()) -> dict[str, Any] | None:
        projection = dict.fromkeys(fields, 1) if fields else None
        return await self.coll.find_one(user_state(user_id), projection)

    async def users(self) -> list[str]:
        return [doc["_id"] async for doc in self.coll.find(every_user(), {"_id": 1})]

    async def ensure(self, user_id: str) -> None:
        try:
            await self.coll.update_one(user_state(user_id), {"$setOnInsert": EMPTY}, upsert=True)
        except DuplicateKeyError:  # created concurrently
            pass

    async def allocate(self, user_id: str, count: int) -> int:
        """Reserve ``count`` vector ids of an existing state; the first."""
        doc = await self.coll.find_one_and_update(
            user_state(user_id), {"$inc": {"next_vid": count}}, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            raise LookupError(f"no index state for {user_id}")
        return int(doc["next_vid"]) - count

    async def compare_and_set(self, user_id: str, seq: int, update: dict[str, Any]) -> bool:
        """Apply ``update`` if the state is still at ``seq``; True when it was applied."""
        return (await self.coll.update_one(user_state_at(user_id, seq), update)).modified_count == 1
