"""Real infrastructure for the tests: Redis, PostgreSQL with DocumentDB, FerretDB v2 and nginx run
as child processes (loopback ports, the database on a unix socket), with the same launchers as
`collabry dev up`, one set per test session.

Isolation between tests: each test gets its own database name and a flushed Redis.
"""

from __future__ import annotations

import gc
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as redis_sync
from pymongo import MongoClient

from collabry.config import Settings, load_settings
from collabry.devstack import components
from collabry.devstack.components import Process, free_port
from tests.support.engine_fixtures import (  # noqa: F401 - shared engine fixtures
    Seed,
    engine,
    engine_client,
    engine_env,
    engine_settings,
    fake_llm,
    seed,
    start_engine,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@dataclass
class Infra:
    root: Path
    redis: Process
    redis_port: int
    database: components.Database

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def mongo_uri(self) -> str:
        return self.database.uri

    def restart_redis(self) -> None:
        self.redis.stop()
        self.redis = components.redis(self.redis_port, self.root / "redis").start().wait_ready()

    def stop(self) -> None:
        # The current objects: a test that restarted a server replaced the one started first.
        self.database.stop()
        self.redis.stop()


@pytest.fixture(autouse=True)
def collect_garbage_after_each_test() -> Iterator[None]:
    """Unclosed responses, sockets or files warn (ResourceWarning is an error) when the garbage
    collector finds them. Collecting after every test reports a leak against the test that made
    it, instead of against whichever later test the collector happens to run in."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    root = tmp_path_factory.mktemp("infra")
    # PostgreSQL runs as an unprivileged user, who cannot enter pytest's 0700 temporary folders.
    db_root = Path(tempfile.mkdtemp(prefix="collabry-db-"))
    redis_port = free_port()
    redis = components.redis(redis_port, root / "redis").start()
    database = components.start_database(db_root, free_port())
    infra = Infra(root, redis.wait_ready(), redis_port, database)
    yield infra
    infra.stop()
    shutil.rmtree(db_root, ignore_errors=True)


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    return "t_" + secrets.token_hex(6)


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    d = tmp_path / "secrets"
    d.mkdir()
    for name in ("jwt-secret", "service-token", "webhook-secret"):
        (d / name).write_text(secrets.token_hex(32))
        (d / name).chmod(0o600)
    return d


@pytest.fixture
def env(infra: Infra, db_name: str, secrets_dir: Path, tmp_path: Path) -> dict[str, str]:
    """The environment a Collabry process of this test runs with."""
    redis_sync.Redis.from_url(infra.redis_url).flushall()
    return {
        "COLLABRY_MODE": "production",
        "COLLABRY_LOG_FORMAT": "json",
        "COLLABRY_STATE_DIR": str(tmp_path / "state"),
        "COLLABRY_DATABASE_URI": infra.mongo_uri,
        "COLLABRY_DATABASE_NAME": db_name,
        "COLLABRY_REDIS_URL": infra.redis_url,
        "CREDENTIALS_DIRECTORY": str(secrets_dir),
        # Cheap hashing keeps the suite fast; production parameters are the defaults.
        "COLLABRY_ARGON2_TIME_COST": "1",
        "COLLABRY_ARGON2_MEMORY_KIB": "1024",
        "COLLABRY_DRAIN_TIMEOUT": "10",
        "COLLABRY_READY_TIMEOUT": "1",
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env, require=("jwt-secret", "service-token"))


@pytest.fixture
def mongo(infra: Infra, db_name: str) -> Iterator[object]:
    client: MongoClient = MongoClient(infra.mongo_uri, tz_aware=True)
    yield client[db_name]
    client.drop_database(db_name)
    client.close()


@pytest.fixture
async def gateway(aiohttp_client: Callable, settings: Settings) -> AsyncIterator[object]:
    """The gateway app built by its factory, served in-process on a test server."""
    from collabry.gateway.app import create_app

    app = await create_app(settings)
    client = await aiohttp_client(app)
    yield client


@pytest.fixture
def spawn(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[..., Process]]:
    """Start `collabry <args>` subprocesses; all are stopped at the end of the test."""
    started: list[Process] = []

    def start(
        name: str, *args: str, port: int | None = None, extra_env: dict[str, str] | None = None, wait: bool = True
    ) -> Process:
        proc = components.collabry(name, list(args), {**env, **(extra_env or {})}, tmp_path / "logs", port=port)
        proc.start()
        started.append(proc)
        if wait:
            proc.wait_ready(60)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop(timeout=15, sig=signal.SIGTERM)


@pytest.fixture
def nginx_for(tmp_path: Path) -> Iterator[Callable[[list[int]], tuple[Process, int]]]:
    started: list[Process] = []

    def start(gateway_ports: list[int]) -> tuple[Process, int]:
        port = free_port()
        proc = components.nginx(tmp_path / "nginx", port, gateway_ports).start().wait_ready(15)
        started.append(proc)
        return proc, port

    yield start
    for proc in started:
        proc.stop(timeout=5, sig=signal.SIGQUIT)
