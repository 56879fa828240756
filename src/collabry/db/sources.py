"""Sources of notebooks (collection ``sources``).

``{_id, user_id, notebook_id, title, kind, content_type, status: processing|ready|failed, chunks,
error, size, sha256, file, ingest_id, created_at, updated_at, processing_at, indexed_at,
deleted_at}``. The gateway creates and deletes them; the engine moves ``status`` as it ingests,
claiming each ingestion with ``ingest_id`` so that only the latest one may finish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .client import Database
from .queries import Filter, query
from .reads import all_of

COLLECTION = "sources"


@query(COLLECTION, example=("s1",))
def source(source_id: str) -> Filter:
    return {"_id": source_id}


@query(COLLECTION, example=("s1", "u1"))
def users_source(source_id: str, user_id: str) -> Filter:
    return {"_id": source_id, "user_id": user_id}


@query(COLLECTION, example=("s1", "u1"))
def users_unbinned_source(source_id: str, user_id: str) -> Filter:
    return {"_id": source_id, "user_id": user_id, "deleted_at": None}


@query(COLLECTION, example=("s1", "u1", "n1"))
def live_source(source_id: str, user_id: str, notebook_id: str) -> Filter:
    return {"_id": source_id, "user_id": user_id, "notebook_id": notebook_id, "deleted_at": None}


@query(COLLECTION, example=("s1", "i1"))
def ingestion(source_id: str, ingest_id: str) -> Filter:
    return {"_id": source_id, "ingest_id": ingest_id}


@query(COLLECTION, example=("n1", "u1"), sort=(("created_at", 1), ("_id", 1)))
def notebooks_live_sources(notebook_id: str, user_id: str) -> Filter:
    return {"notebook_id": notebook_id, "user_id": user_id, "deleted_at": None}


@query(COLLECTION, example=("n1", "u1", datetime(2026, 12, 1)))
def binned_with_notebook(notebook_id: str, user_id: str, deleted_at: datetime) -> Filter:
    """The sources that went to the recycle bin together with their notebook."""
    return {"notebook_id": notebook_id, "user_id": user_id, "deleted_at": deleted_at}


@query(COLLECTION, example=("n1", "u1"))
def notebooks_sources(notebook_id: str, user_id: str) -> Filter:
    return {"notebook_id": notebook_id, "user_id": user_id}


@query(
    COLLECTION, example=("u1", "n1", None), sort=(("_id", 1),),
    variants=(("u1", None, None), ("u1", "n1", ["s1", "s2"]), ("u1", None, ["s1"])),
)
def ready_sources(user_id: str, notebook_id: str | None, source_ids: list[str] | None) -> Filter:
    """What the user may retrieve from: live, indexed sources, optionally of one notebook or a list."""
    where: Filter = {"user_id": user_id, "deleted_at": None, "status": "ready"}
    if notebook_id is not None:
        where["notebook_id"] = notebook_id
    if source_ids is not None:
        where["_id"] = {"$in": list(source_ids)}
    return where


@query(COLLECTION, example=(["a.pdf", "b.txt"],))
def with_files(names: list[str]) -> Filter:
    return {"file": {"$in": names}}


class Sources:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def insert(self, doc: dict[str, Any]) -> None:
        await self.coll.insert_one(doc)

    async def get(self, source_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(source(source_id))

    async def live(self, source_id: str, user_id: str, notebook_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(live_source(source_id, user_id, notebook_id))

    async def live_in(self, notebook_id: str, user_id: str) -> list[dict[str, Any]]:
        where = notebooks_live_sources(notebook_id, user_id)
        return await all_of(self.coll, where, sort=notebooks_live_sources.sort_list)

    async def all_in(self, notebook_id: str, user_id: str) -> list[dict[str, Any]]:
        """Every source of a notebook, binned or not (for its purge)."""
        return await all_of(self.coll, notebooks_sources(notebook_id, user_id))

    async def to_bin_with_notebook(self, notebook_id: str, user_id: str, at: datetime) -> list[dict[str, Any]]:
        """Bin the notebook's live sources with it; the ones binned."""
        live = await all_of(self.coll, notebooks_live_sources(notebook_id, user_id))
        await self.coll.update_many(notebooks_live_sources(notebook_id, user_id), {"$set": {"deleted_at": at}})
        return live

    async def restore_with_notebook(self, notebook_id: str, user_id: str, deleted_at: datetime) -> list[dict[str, Any]]:
        """Bring back the sources binned with the notebook at ``deleted_at``; the ones restored."""
        where = binned_with_notebook(notebook_id, user_id, deleted_at)
        binned = await all_of(self.coll, where)
        await self.coll.update_many(where, {"$set": {"deleted_at": None}})
        return binned

    async def ready(self, user_id: str, notebook_id: str | None, source_ids: list[str] | None) -> list[dict[str, Any]]:
        """Id and title of the sources answers may draw on, by id."""
        where = ready_sources(user_id, notebook_id, source_ids)
        return await all_of(self.coll, where, sort=ready_sources.sort_list, projection={"title": 1})

    async def referenced_files(self, names: list[str]) -> set[str]:
        return {doc["file"] async for doc in self.coll.find(with_files(names), {"file": 1})}

    async def set_status(self, source_id: str, status: str, /, *, at: datetime | None = None, **fields: Any) -> None:
        changes = {"status": status, **fields}
        if at is not None:
            changes["updated_at"] = at
        await self.coll.update_one(source(source_id), {"$set": changes})

    async def claim_ingestion(self, source_id: str, user_id: str, ingest_id: str, at: datetime) -> bool:
        """Make ``ingest_id`` the source's current ingestion; False when the source is gone or binned."""
        result = await self.coll.update_one(
            users_unbinned_source(source_id, user_id),
            {"$set": {"status": "processing", "error": None, "ingest_id": ingest_id, "processing_at": at}},
        )
        return result.matched_count == 1

    async def finish_ingestion(self, source_id: str, ingest_id: str, status: str, /, **fields: Any) -> None:
        """Record the outcome of ``ingest_id`` unless a newer ingestion (or a delete) took the source."""
        await self.coll.update_one(ingestion(source_id, ingest_id), {"$set": {"status": status, **fields}})

    async def drop_ingestion(self, source_id: str, user_id: str) -> None:
        await self.coll.update_one(users_source(source_id, user_id), {"$set": {"ingest_id": None}})

    async def delete(self, source_id: str) -> None:
        await self.coll.delete_one(source(source_id))
