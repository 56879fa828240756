"""The job ledger: one document per job slot in ``job_runs``, claimed by a unique insert.

``{_id: "<job>:<slot>"}`` is inserted by whichever worker gets there first; every other worker's
insert fails on the unique ``_id`` and it skips the slot. The winner holds a lease, renews it while
it works and records the outcome. A slot whose lease ran out without a finished run (the process
was killed, the host died) or whose run failed is taken over by a later run.

A takeover is one conditional update of the slot document that matches only the attempt the
taker read, unfinished and with its lease run out, and moves it to the next attempt: the database
applies it atomically, so of any number of workers trying at once exactly one gets the attempt,
and the owner of the old attempt can no longer renew or record it.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..db.client import Database
from ..db.job_runs import SCHEDULED, JobRuns
from .schedule import slot_name

RUNNING, DONE, FAILED = "running", "done", "failed"
MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Claim:
    run_id: str
    job: str
    slot: str
    slot_at: datetime
    attempt: int
    owner: str
    previous: str | None  # status of the attempt taken over (running = it was abandoned)


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JobLedger:
    def __init__(self, db: Database, *, owner: str | None = None) -> None:
        self.runs = JobRuns(db)
        self.owner = owner or owner_name()

    @staticmethod
    def run_id(job: str, slot: str) -> str:
        return f"{job}:{slot}"

    async def claim(
        self, job: str, slot_at: datetime, *, now: datetime, lease: timedelta, max_attempts: int,
        trigger: str = SCHEDULED, slot: str | None = None,
    ) -> Claim | None:
        """Claim a slot; None when another worker holds it, it is done, or it has used its attempts."""
        slot = slot or slot_name(slot_at)
        run_id = self.run_id(job, slot)
        claimed = await self.runs.claim(
                {
                    "_id": run_id,
                    "job": job,
                    "slot": slot,
                    "slot_at": slot_at,
                    "trigger": trigger,
                    "status": RUNNING,
                    "attempt": 1,
                    "owner": self.owner,
                    "host": socket.gethostname(),
                    "lease_until": now + lease,
                    "started_at": now,
                    "finished_at": None,
                    "duration": None,
                    "items": {},
                    "error": None,
                }
            )
        if not claimed:
            return await self._take_over(run_id, now=now, lease=lease, max_attempts=max_attempts)
        return Claim(run_id, job, slot, slot_at, 1, self.owner, None)

    async def _take_over(self, run_id: str, *, now: datetime, lease: timedelta, max_attempts: int) -> Claim | None:
        doc = await self.runs.get(run_id)
        if doc is None or not self._expired(doc, now) or doc["attempt"] >= max_attempts:
            return None
        attempt = int(doc["attempt"]) + 1
        abandoned = doc["status"] == RUNNING
        # Matches only the attempt as read here: the owner's own writes match on attempt and owner,
        # and a record of its outcome changes status or lease, so whatever this sets is still true.
        taken = await self.runs.take_over(
            doc,
            {
                "status": RUNNING,
                "attempt": attempt,
                "owner": self.owner,
                "host": socket.gethostname(),
                "lease_until": now + lease,
                "started_at": now,
                "finished_at": None,
                "previous_error": doc.get("error") or ("abandoned" if abandoned else None),
            },
        )
        if not taken:
            return None  # another worker took this attempt over first
        if abandoned:
            await self.count_failure(doc["job"])  # the abandoned attempt never recorded itself
        return Claim(run_id, doc["job"], doc["slot"], doc["slot_at"], attempt, self.owner, doc["status"])

    @staticmethod
    def _expired(doc: dict[str, Any], now: datetime) -> bool:
        return bool(doc["status"] != DONE and doc["lease_until"] <= now)

    async def renew(self, claim: Claim, *, now: datetime, lease: timedelta) -> bool:
        """Extend the lease while the job works; False when another attempt has taken the slot."""
        return await self.runs.update_attempt(claim.run_id, claim.attempt, claim.owner, {"lease_until": now + lease})

    async def finish(
        self, claim: Claim, *, now: datetime, started: datetime, items: dict[str, int], error: str | None,
        retry_at: datetime | None = None, counts_as_failure: bool = True,
    ) -> bool:
        """Record the outcome; a failed slot becomes claimable again at ``retry_at``.

        An interrupted attempt (the process was asked to stop) is recorded like a failure, so it is
        retried, but ``counts_as_failure=False`` keeps it out of the failure metric."""
        status = FAILED if error else DONE
        recorded = await self.runs.update_attempt(
            claim.run_id, claim.attempt, claim.owner,
            {
                "status": status,
                "finished_at": now,
                "duration": max((now - started).total_seconds(), 0.0),
                "items": dict(items),
                "error": error,
                "lease_until": (retry_at or now) if error else now,
            },
        )
        if error and counts_as_failure:
            await self.count_failure(claim.job)
        return recorded

    async def count_failure(self, job: str) -> None:
        await self.runs.count_failure(job)

    async def known_slots(self, job: str, since: datetime) -> dict[datetime, dict[str, Any]]:
        """Scheduled runs of ``job`` whose slot is after ``since``, by slot time."""
        return {doc["slot_at"]: doc for doc in await self.runs.scheduled_since(job, since)}

    async def last_slot(self, job: str) -> datetime | None:
        doc = await self.runs.last_scheduled(job)
        return doc["slot_at"] if doc else None

    async def recent(self, *, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return await self.runs.recent(job, limit)

    async def last_success(self, job: str) -> dict[str, Any] | None:
        return await self.runs.last_success(job)

    async def failures(self, job: str) -> int:
        return await self.runs.failures(job)

    async def purge(self, before: datetime) -> int:
        """Forget runs that started before ``before`` (the cleanup job keeps the ledger bounded)."""
        return await self.runs.purge(before)
