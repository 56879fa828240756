"""Single conditional updates that replace FerretDB 1.x's insert-based workarounds: of fifty
concurrent callers exactly one wins (or exactly the limit), on the real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from collabry.auth.refresh import RefreshTokenStore
from collabry.db.migrations import migrate
from collabry.worker.ledger import JobLedger

NOW = datetime(2030, 4, 2, 8, tzinfo=UTC)
LEASE = timedelta(minutes=2)


async def test_fifty_workers_take_an_abandoned_slot_over_once(db: Any) -> None:
    await migrate(db)
    first = await JobLedger(db, owner="dead").claim("reminders", NOW, now=NOW, lease=LEASE, max_attempts=5)
    assert first is not None and first.attempt == 1
    later = NOW + LEASE + timedelta(seconds=1)  # the first owner died: its lease ran out
    claims = await asyncio.gather(*[
        JobLedger(db, owner=f"w{i}").claim("reminders", NOW, now=later, lease=LEASE, max_attempts=5)
        for i in range(50)
    ])
    won = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    assert won[0].attempt == 2 and won[0].previous == "running"
    run = await db["job_runs"].find_one({"_id": first.run_id})
    assert run["owner"] == won[0].owner and run["attempt"] == 2 and run["previous_error"] == "abandoned"
    # the dead owner's late writes no longer count, the winner's do
    assert not await JobLedger(db, owner="dead").renew(first, now=later, lease=LEASE)
    assert await JobLedger(db, owner=won[0].owner).renew(won[0], now=later, lease=LEASE)
    assert await JobLedger(db).failures("reminders") == 1  # the abandoned attempt, counted once


async def test_fifty_concurrent_revocations_of_a_session_report_it_once(db: Any) -> None:
    await migrate(db)
    store = RefreshTokenStore(db, ttl_seconds=3600)
    rotation = await store.start("u1", user_agent="test", ip="127.0.0.1")
    results = await asyncio.gather(*[store.revoke(rotation.session_id, user_id="u1") for _ in range(50)])
    assert results.count(True) == 1
    assert not await store.is_active(rotation.session_id)
    # a rotation racing with the revocation cannot bring the session back
    other = await store.start("u1", user_agent="test", ip="127.0.0.1")
    outcomes = await asyncio.gather(
        store.rotate(other.refresh_token), store.revoke(other.session_id), return_exceptions=True
    )
    assert outcomes[1] is True
    assert not await store.is_active(other.session_id)
    assert await store.list_active("u1") == []
