"""Worker tests run `collabry worker ...` as real subprocesses against the session's Redis and FerretDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from collabry.db.migrations import migrate
from collabry.worker.jobs import JOBS

# Every job but the ones a test names is switched off, so each test sees only its own work.
ALL_JOBS = tuple(job.name for job in JOBS)


def schedules(**specs: str) -> str:
    """A COLLABRY_WORKER_SCHEDULES value: the given jobs on the given schedules, the rest off."""
    return ";".join(f"{job}={specs.get(job, 'off')}" for job in ALL_JOBS)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WorkerResult:
    returncode: int
    stdout: str
    stderr: str

    def lines(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.stderr.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event:
                found.append(record)
        return found


@pytest.fixture
async def db(infra: Any, db_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True, retryWrites=False)
    database = client[db_name]
    await migrate(database)
    yield database
    await client.drop_database(db_name)
    await client.close()


@pytest.fixture
def worker_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "COLLABRY_WORKER_SCHEDULES": schedules()}


def worker_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "collabry.cli", "worker", *args]


@pytest.fixture
def run_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Run `collabry worker ARGS` to completion; returns its exit status and output."""

    def run(*args: str, extra_env: dict[str, str] | None = None, timeout: float = 90) -> WorkerResult:
        done = subprocess.run(
            worker_argv(*args), env={**os.environ, **worker_env, **(extra_env or {})}, capture_output=True, text=True,
            timeout=timeout, check=False, cwd=tmp_path,
        )
        return WorkerResult(done.returncode, done.stdout, done.stderr)

    yield run
