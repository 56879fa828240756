"""Fixtures for the study-domain tests: the real gateway app over real FerretDB and Redis, with
small plan limits so quotas are reached in a few requests, and the indexes in place before the
first request (unique indexes carry dedupe keys and idempotency keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from collabry.appkeys import DB
from collabry.config import Plan, PlanLimits, Settings
from collabry.db.client import Database
from tests.support.eventually import eventually

from ..helpers import user_with_token

KIB = 1024
TEST_PLANS = (
    Plan("free", "Free", 0, PlanLimits(ai_per_day=10, uploads_per_day=4, storage_bytes=64 * KIB, boards=3,
                                       notebooks=3)),
    Plan("starter", "Starter", 900, PlanLimits(50, 20, 1024 * KIB, 10, 10)),
    Plan("pro", "Pro", 1900, PlanLimits(500, 100, 8192 * KIB, 50, 50)),
)
MAX_UPLOAD = 32 * KIB


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "COLLABRY_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "COLLABRY_GLOBAL_LIMIT": "100000/60"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(plans=TEST_PLANS)


@pytest.fixture
async def api(gateway: Any) -> AsyncIterator[Any]:
    """The gateway test client, once its database has every index (the app migrates at start)."""
    db = gateway.app[DB]

    async def migrated() -> bool:
        return await db["meta"].find_one({"_id": "schema"}) is not None

    await eventually(migrated, 30, "the gateway to finish its migration", interval=0.02)
    yield gateway


@pytest.fixture
def db(api: Any) -> Database:
    return api.app[DB]


@pytest.fixture
async def alice(api: Any) -> dict[str, Any]:
    return await user_with_token(api, "alice")


@pytest.fixture
async def bob(api: Any) -> dict[str, Any]:
    return await user_with_token(api, "bob")
