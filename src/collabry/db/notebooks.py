"""Notebooks (collection ``notebooks``): ``{_id, user_id, title, created_at, updated_at, deleted_at}``.

``deleted_at`` set means in the owner's recycle bin; the worker purges it after the window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .client import Database
from .queries import Filter, query
from .reads import all_of

COLLECTION = "notebooks"


@query(COLLECTION, example=("n1",))
def notebook(notebook_id: str) -> Filter:
    return {"_id": notebook_id}


@query(COLLECTION, example=("n1", "u1"))
def users_notebook(notebook_id: str, user_id: str) -> Filter:
    return {"_id": notebook_id, "user_id": user_id}


@query(COLLECTION, example=("n1", "u1"))
def live_notebook(notebook_id: str, user_id: str) -> Filter:
    return {"_id": notebook_id, "user_id": user_id, "deleted_at": None}


@query(COLLECTION, example=("n1", "u1"))
def binned_notebook(notebook_id: str, user_id: str) -> Filter:
    return {"_id": notebook_id, "user_id": user_id, "deleted_at": {"$ne": None}}


@query(COLLECTION, example=("u1",), sort=(("updated_at", -1), ("_id", -1)))
def users_live_notebooks(user_id: str) -> Filter:
    return {"user_id": user_id, "deleted_at": None}


@query(COLLECTION, example=("u1", datetime(2026, 11, 4)), sort=(("deleted_at", -1),))
def users_bin(user_id: str, since: datetime) -> Filter:
    return {"user_id": user_id, "deleted_at": {"$gt": since}}


@query(COLLECTION, example=(datetime(2026, 11, 4),))
def binned_before(cutoff: datetime) -> Filter:
    return {"deleted_at": {"$ne": None, "$lte": cutoff}}


class Notebooks:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def insert(self, doc: dict[str, Any]) -> None:
        await self.coll.insert_one(doc)

    async def live(self, notebook_id: str, user_id: str) -> dict[str, Any] | None:
        """The user's notebook unless it is in the recycle bin."""
        return await self.coll.find_one(live_notebook(notebook_id, user_id))

    async def binned(self, notebook_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(binned_notebook(notebook_id, user_id))

    async def live_of(self, user_id: str) -> list[dict[str, Any]]:
        where = users_live_notebooks(user_id)
        return await all_of(self.coll, where, sort=users_live_notebooks.sort_list)

    async def bin_of(self, user_id: str, since: datetime) -> list[dict[str, Any]]:
        return await all_of(self.coll, users_bin(user_id, since), sort=users_bin.sort_list)

    async def binned_before(self, cutoff: datetime) -> list[dict[str, Any]]:
        return await self.coll.find(binned_before(cutoff)).to_list(None)

    async def rename(self, notebook_id: str, user_id: str, title: str, at: datetime) -> None:
        await self.coll.update_one(users_notebook(notebook_id, user_id), {"$set": {"title": title, "updated_at": at}})

    async def to_bin(self, notebook_id: str, user_id: str, at: datetime) -> None:
        await self.coll.update_one(users_notebook(notebook_id, user_id), {"$set": {"deleted_at": at}})

    async def restore(self, notebook_id: str, user_id: str, at: datetime) -> None:
        await self.coll.update_one(
            users_notebook(notebook_id, user_id), {"$set": {"deleted_at": None, "updated_at": at}}
        )

    async def delete(self, notebook_id: str) -> None:
        await self.coll.delete_one(notebook(notebook_id))
