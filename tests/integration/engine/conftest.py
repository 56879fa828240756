"""Helpers for the engine's own tests: calling the internal API and waiting for ingestion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.support.engine_fixtures import Seed


class Api:
    """The engine's internal API through a test client (in-process or a real process)."""

    def __init__(self, client: Any, headers: dict[str, str], seed: Seed) -> None:
        self.client = client
        self.headers = headers
        self.seed = seed

    async def ingest(
        self, source_id: str, user_id: str, notebook_id: str, data: bytes, content_type: str, expect: int = 202
    ) -> dict[str, Any]:
        headers = {
            **self.headers,
            "Content-Type": content_type,
            "X-Collabry-User": user_id,
            "X-Collabry-Notebook": notebook_id,
        }
        resp = await self.client.post(f"/internal/sources/{source_id}/ingest", data=data, headers=headers)
        assert resp.status == expect, await resp.text()
        return dict(await resp.json())

    async def ingest_text(self, source_id: str, user_id: str, notebook_id: str, text: str) -> None:
        resp = await self.client.post(
            f"/internal/sources/{source_id}/ingest-text",
            headers=self.headers,
            json={"userId": user_id, "notebookId": notebook_id, "text": text},
        )
        assert resp.status == 202, await resp.text()

    async def add_text(self, user_id: str, notebook_id: str, text: str, title: str = "Notes") -> str:
        """Create a source, ingest ``text`` and wait until it is ready."""
        source_id = await self.seed.source(user_id, notebook_id, title)
        await self.ingest_text(source_id, user_id, notebook_id, text)
        doc = await self.seed.wait_status(source_id)
        assert doc["status"] == "ready", doc
        return source_id

    async def retrieve(self, user_id: str, query: str, expect: int = 200, **filters: Any) -> list[dict[str, Any]]:
        resp = await self.client.post(
            "/internal/retrieve", headers=self.headers, json={"userId": user_id, "query": query, **filters}
        )
        assert resp.status == expect, await resp.text()
        return list((await resp.json())["results"]) if expect == 200 else []

    async def delete(self, source_id: str, user_id: str) -> None:
        resp = await self.client.delete(
            f"/internal/sources/{source_id}", params={"userId": user_id}, headers=self.headers
        )
        assert resp.status == 204, await resp.text()


@pytest.fixture
def engine_env(engine_env: dict[str, str]) -> dict[str, str]:
    # Small chunks, so short test documents still make several chunks (and overlaps).
    return {**engine_env, "COLLABRY_CHUNK_CHARS": "300", "COLLABRY_CHUNK_OVERLAP": "60"}


@pytest.fixture
def api(engine_client: Any, seed: Seed) -> Api:
    return Api(engine_client, engine_client.service_headers, seed)


PHOTOSYNTHESIS = (
    "Photosynthesis is the process by which green plants use sunlight to make glucose from carbon dioxide "
    "and water. It takes place in the chloroplasts, which contain the pigment chlorophyll. Oxygen is released "
    "as a by-product of the light-dependent reactions.\n\n"
    "The Calvin cycle uses ATP and NADPH from the light reactions to fix carbon dioxide into sugars."
)
REVOLUTION = (
    "The French Revolution began in 1789 with the storming of the Bastille. It abolished the monarchy and "
    "proclaimed the First Republic in 1792.\n\nNapoleon Bonaparte seized power in 1799 in the coup of 18 Brumaire."
)
ALGORITHMS = (
    "# Binary search\n\nBinary search finds an item in a **sorted** array by repeatedly halving the "
    "search interval. Its running time is *logarithmic* in the size of the array.\n\n"
    "## Hash tables\n\nA [hash table](https://example.com/hash) maps keys to buckets with a hash function; "
    "lookups take constant time on average.\n"
)


@pytest.fixture
async def db(infra: Any, db_name: str) -> AsyncIterator[Any]:
    """The test's database through the async driver the engine uses."""
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()
