"""Chunk vectors (collection ``chunks``), written by the engine's ingestion.

``{_id, user_id, notebook_id, source_id, ingest_id, seq, ord, page, text, vector: float32 bytes,
model, dim}``; ``seq`` is the vector's FAISS id, unique per user. Chunks of an ingestion become
part of the index only when the ingestion is committed to the user's index log (``index_state``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pymongo import UpdateOne

from .client import Database
from .queries import Filter, query

COLLECTION = "chunks"
VECTOR_FIELDS = {"seq": 1, "vector": 1, "text": 1, "ord": 1, "page": 1}


@query(COLLECTION, example=("u1", "s1", "i1"))
def ingestion_chunks(user_id: str, source_id: str, ingest_id: str) -> Filter:
    return {"user_id": user_id, "source_id": source_id, "ingest_id": ingest_id}


@query(COLLECTION, example=("u1", "s1", "i1"))
def other_ingestions_chunks(user_id: str, source_id: str, ingest_id: str) -> Filter:
    return {"user_id": user_id, "source_id": source_id, "ingest_id": {"$ne": ingest_id}}


@query(COLLECTION, example=("u1", "s1"))
def source_chunks(user_id: str, source_id: str) -> Filter:
    return {"user_id": user_id, "source_id": source_id}


@query(COLLECTION, example=("u1", ["s1", "s2"]), sort=(("seq", 1),))
def sources_chunks(user_id: str, source_ids: list[str]) -> Filter:
    return {"user_id": user_id, "source_id": {"$in": source_ids}}


class Chunks:
    def __init__(self, db: Database) -> None:
        self.coll = db[COLLECTION]

    async def insert(self, docs: list[dict[str, Any]]) -> None:
        await self.coll.insert_many(docs, ordered=False)

    async def of_ingestion(self, user_id: str, source_id: str, ingest_id: str) -> list[dict[str, Any]]:
        """The vectors and passages of one ingestion (``VECTOR_FIELDS``), in no particular order."""
        return await self.coll.find(ingestion_chunks(user_id, source_id, ingest_id), VECTOR_FIELDS).to_list(None)

    async def count_of_ingestion(self, user_id: str, source_id: str, ingest_id: str) -> int:
        return int(await self.coll.count_documents(ingestion_chunks(user_id, source_id, ingest_id)))

    async def delete_ingestion(self, user_id: str, source_id: str, ingest_id: str) -> None:
        await self.coll.delete_many(ingestion_chunks(user_id, source_id, ingest_id))

    async def delete_other_ingestions(self, user_id: str, source_id: str, ingest_id: str) -> None:
        await self.coll.delete_many(other_ingestions_chunks(user_id, source_id, ingest_id))

    async def delete_source(self, user_id: str, source_id: str) -> None:
        await self.coll.delete_many(source_chunks(user_id, source_id))

    async def count_of_sources(self, user_id: str, source_ids: list[str]) -> int:
        return int(await self.coll.count_documents(sources_chunks(user_id, source_ids)))

    async def models_of_sources(self, user_id: str, source_ids: list[str]) -> list[str]:
        return [str(m) for m in await self.coll.distinct("model", sources_chunks(user_id, source_ids))]

    async def texts_of_sources(self, user_id: str, source_ids: list[str]) -> AsyncIterator[dict[str, Any]]:
        """``_id`` and ``text`` of every chunk of the sources, in vector-id order."""
        where = sources_chunks(user_id, source_ids)
        async for doc in self.coll.find(where, {"text": 1}, sort=sources_chunks.sort_list):
            yield doc

    async def set_vectors(self, vectors: list[tuple[str, bytes]], model: str, dim: int) -> None:
        """Replace the vectors of chunks (by id) with ones made by ``model``."""
        await self.coll.bulk_write(
            [UpdateOne({"_id": chunk_id}, {"$set": {"vector": vector, "model": model, "dim": dim}})
             for chunk_id, vector in vectors],
            ordered=False,
        )
