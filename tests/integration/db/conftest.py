"""Fixtures for the database-layer tests: the test's database through the async driver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient


@pytest.fixture
async def db(infra: Any, db_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()
