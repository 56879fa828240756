"""The worker's job ledger (``job_runs``) and per-job failure counts (``job_stats``).

- ``job_runs`` ``{_id: "<job>:<slot>", job, slot, slot_at, trigger: schedule|manual, status:
  running|done|failed, attempt, owner, host, lease_until, started_at, finished_at, duration,
  items, error, previous_error}``: inserting a slot's document claims it; later writes are
  conditional on the attempt and owner (see ``worker.ledger``).
- ``job_stats`` ``{_id: job, failures}``
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from .client import Database
from .queries import Filter, query

RUNS = "job_runs"
STATS = "job_stats"
SCHEDULED = "schedule"


@query(RUNS, example=("cleanup:2026-12-04T12:00:00Z",))
def run(run_id: str) -> Filter:
    return {"_id": run_id}


@query(RUNS, example=("cleanup:2026-12-04T12:00:00Z", 2, "host:1:abc"))
def attempt_of(run_id: str, attempt: int, owner: str) -> Filter:
    """The run while this attempt of this owner holds it."""
    return {"_id": run_id, "attempt": attempt, "owner": owner}


@query(RUNS, example=("cleanup", datetime(2026, 12, 4)))
def scheduled_since(job: str, since: datetime) -> Filter:
    return {"job": job, "trigger": SCHEDULED, "slot_at": {"$gt": since}}


@query(RUNS, example=("cleanup",), sort=(("slot_at", -1),), limit=1)
def scheduled_runs(job: str) -> Filter:
    return {"job": job, "trigger": SCHEDULED}


@query(RUNS, example=("cleanup",), sort=(("started_at", -1),), limit=100)
def runs_of(job: str) -> Filter:
    return {"job": job}


# DocumentDB does not read an index in order to serve a sort, so "the latest runs of every job"
# reads the whole ledger whatever the filter; it is bounded by the retention (30 days).
@query(RUNS, example=(), sort=(("started_at", -1),), limit=100,
       full_scan="`collabry worker status` without --job, an operator's command")
def all_runs() -> Filter:
    return {}


@query(RUNS, example=("cleanup",), sort=(("finished_at", -1),), limit=1)
def successes(job: str) -> Filter:
    return {"job": job, "status": "done"}


@query(RUNS, example=(datetime(2026, 11, 4),))
def finished_before(cutoff: datetime) -> Filter:
    return {"started_at": {"$lt": cutoff}, "lease_until": {"$lt": cutoff}}


@query(STATS, example=("cleanup",))
def stats(job: str) -> Filter:
    return {"_id": job}


class JobRuns:
    def __init__(self, db: Database) -> None:
        self.runs = db[RUNS]
        self.stats = db[STATS]

    async def claim(self, doc: dict[str, Any]) -> bool:
        """Insert a slot's first attempt; False when the slot has a run already."""
        try:
            await self.runs.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, run_id: str) -> dict[str, Any] | None:
        return await self.runs.find_one(run(run_id))

    async def take_over(self, read: dict[str, Any], changes: dict[str, Any]) -> bool:
        """Apply ``changes`` if the run is still exactly as ``read`` (attempt, status, lease); True
        for the one caller whose update applied."""
        where = {**run(read["_id"]), "attempt": read["attempt"], "status": read["status"],
                 "lease_until": read["lease_until"]}
        return (await self.runs.update_one(where, {"$set": changes})).modified_count == 1

    async def update_attempt(self, run_id: str, attempt: int, owner: str, changes: dict[str, Any]) -> bool:
        """Write to the run if this attempt still holds it; False when another attempt took it over."""
        result = await self.runs.update_one(attempt_of(run_id, attempt, owner), {"$set": changes})
        return result.matched_count == 1

    async def count_failure(self, job: str) -> None:
        await self.stats.update_one(stats(job), {"$inc": {"failures": 1}}, upsert=True)

    async def failures(self, job: str) -> int:
        doc = await self.stats.find_one(stats(job))
        return int(doc["failures"]) if doc else 0

    async def scheduled_since(self, job: str, since: datetime) -> list[dict[str, Any]]:
        fields = {"status": 1, "attempt": 1, "lease_until": 1, "slot_at": 1}
        return await self.runs.find(scheduled_since(job, since), fields).to_list(None)

    async def last_scheduled(self, job: str) -> dict[str, Any] | None:
        return await self.runs.find_one(scheduled_runs(job), {"slot_at": 1}, sort=scheduled_runs.sort_list)

    async def recent(self, job: str | None, limit: int) -> list[dict[str, Any]]:
        shape = all_runs if job is None else runs_of
        where = all_runs() if job is None else runs_of(job)
        return await self.runs.find(where, sort=shape.sort_list, limit=limit).to_list(None)

    async def last_success(self, job: str) -> dict[str, Any] | None:
        return await self.runs.find_one(successes(job), sort=successes.sort_list)

    async def purge(self, cutoff: datetime) -> int:
        return (await self.runs.delete_many(finished_before(cutoff))).deleted_count
