"""Engine fixtures shared by every area's tests.

- ``fake_llm``: a ``FakeOpenAI`` server (tests/support/fake_openai.py) for this test.
- ``engine_env``: the test's ``env`` plus the engine settings that point at ``fake_llm``.
- ``engine``: a real ``collabry engine`` subprocess on a free port using ``engine_env``; an
  ``EngineHandle`` with its URL, the service token and the fake LLM.
- ``engine_client``: an aiohttp test client of the engine app, served in-process (faster; for
  tests of the engine itself).
- ``seed``: inserts the users, notebooks and sources documents that the gateway would create.

The engine loads the embedded embedding model (~0.3 s); everything else is real: Redis, FerretDB,
HTTP, the ``openai`` client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from collabry.config import Settings, load_settings
from collabry.db.client import new_id, utcnow
from collabry.devstack.components import Process, free_port
from tests.support.eventually import eventually

from .fake_openai import FakeOpenAI


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def engine_env(env: dict[str, str], fake_llm: FakeOpenAI) -> dict[str, str]:
    return {
        **env,
        "COLLABRY_LLM_BASE_URL": fake_llm.base_url,
        "COLLABRY_LLM_TIMEOUT": "10",
        "COLLABRY_STREAM_STALE_AFTER": "5",
    }


@pytest.fixture
def engine_settings(engine_env: dict[str, str]) -> Settings:
    return load_settings(engine_env, require=("service-token",))


@dataclass
class EngineHandle:
    url: str
    port: int
    token: str
    process: Process
    fake_llm: FakeOpenAI
    state_dir: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def start_engine(
    spawn: Callable[..., Process], engine_env: dict[str, str], secrets_dir: Path, fake_llm: FakeOpenAI, tmp_path: Path
) -> Callable[..., EngineHandle]:
    """Start an engine process (a second replica, or one with other settings).

    Each gets its own state directory (as separate hosts would) unless ``state_dir`` is given,
    e.g. to restart an engine on the snapshots of a previous one.
    """

    def start(
        extra_env: dict[str, str] | None = None,
        *,
        name: str = "engine",
        state_dir: Path | None = None,
        port: int | None = None,
    ) -> EngineHandle:
        port = port or free_port()
        state = state_dir or tmp_path / f"state-{name}-{port}"
        env = {**engine_env, "COLLABRY_STATE_DIR": str(state), **(extra_env or {})}
        proc = spawn(f"{name}-{port}", "engine", "--port", str(port), port=port, extra_env=env)
        token = (secrets_dir / "service-token").read_text().strip()
        return EngineHandle(f"http://127.0.0.1:{port}", port, token, proc, fake_llm, state)

    return start


@pytest.fixture
def engine(start_engine: Callable[..., EngineHandle]) -> EngineHandle:
    """One `collabry engine` process with the fake LLM; its URL, token and the fake."""
    return start_engine()


@pytest.fixture
async def engine_client(aiohttp_client: Callable[..., Any], engine_settings: Settings) -> AsyncIterator[Any]:
    """The engine app in-process; requests need ``headers=service_headers(engine_settings)``."""
    from collabry.engine.app import create_app

    app = await create_app(engine_settings)
    client = await aiohttp_client(app)
    client.service_headers = {"Authorization": f"Bearer {engine_settings.service_token}"}
    yield client


class Seed:
    """Inserts the documents the gateway's own routes would have created (users, notebooks, sources)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def user(self, name: str = "Student") -> str:
        user_id = new_id()
        await self.db.users.insert_one(
            {
                "_id": user_id,
                "email": f"{user_id}@example.com",
                "name": name,
                "plan": "free",
                "role": "user",
                "created_at": utcnow(),
            }
        )
        return user_id

    async def notebook(self, user_id: str, title: str = "Notebook") -> str:
        notebook_id = new_id()
        now = utcnow()
        await self.db.notebooks.insert_one(
            {
                "_id": notebook_id,
                "user_id": user_id,
                "title": title,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            }
        )
        return notebook_id

    async def source(self, user_id: str, notebook_id: str, title: str = "Source", kind: str = "text") -> str:
        source_id = new_id()
        await self.db.sources.insert_one(
            {
                "_id": source_id,
                "user_id": user_id,
                "notebook_id": notebook_id,
                "title": title,
                "kind": kind,
                "status": "processing",
                "chunks": 0,
                "error": None,
                "size": 0,
                "created_at": utcnow(),
                "deleted_at": None,
            }
        )
        return source_id

    async def wait_status(self, source_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """The source document once it has left ``processing``."""

        async def processed() -> dict[str, Any] | None:
            doc = await self.db.sources.find_one({"_id": source_id})
            return dict(doc) if doc and doc.get("status") != "processing" else None

        return await eventually(processed, timeout, f"source {source_id} to leave processing")


@pytest.fixture
async def seed(infra: Any, db_name: str) -> AsyncIterator[Seed]:
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    yield Seed(client[db_name])
    await client.close()
