"""Fifty `collabry worker run-due` processes fired for the same minute: each job slot runs once and
each item (reminder, renewal invoice, downgrade) happens once."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import WorkerResult, schedules, stamp, worker_argv
from .seed import seed_reminders, seed_subscriptions

NOW = datetime(2030, 1, 15, 9, 30, 20, tzinfo=UTC)
PROCESSES = 50

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def run_concurrently(env: dict[str, str], count: int, *args: str) -> list[WorkerResult]:
    procs = [
        subprocess.Popen(worker_argv(*args), env={**os.environ, **env}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=360)
        results.append(WorkerResult(proc.returncode, out, err))
    return results


async def test_fifty_concurrent_runs_run_every_slot_and_item_once(db, worker_env):
    expected = await seed_reminders(db, NOW, users=5)
    users = await seed_subscriptions(db, NOW.replace(second=0), each=3)
    env = {**worker_env, "COLLABRY_WORKER_SCHEDULES": schedules(
        reminders="* * * * *", subscriptions="*/5 * * * *", stale_streams="* * * * *", cleanup="17 3 * * *",
        uploads="47 3 * * *")}

    results = run_concurrently(env, PROCESSES, "run-due", "--now", stamp(NOW))

    assert [r.returncode for r in results] == [0] * PROCESSES, next(r.stderr for r in results if r.returncode)
    ran = Counter(line["job"] for r in results for line in r.lines("job_run"))
    assert ran == {"reminders": 1, "subscriptions": 1, "stale_streams": 1, "cleanup": 1, "uploads": 1}
    runs = await db["job_runs"].find().to_list(None)
    assert sorted(doc["_id"].split("@")[0].split(":")[0] for doc in runs) == [
        "cleanup", "reminders", "stale_streams", "subscriptions", "uploads"]
    assert {(doc["status"], doc["attempt"]) for doc in runs} == {("done", 1)}
    reminder_run = next(doc for doc in runs if doc["job"] == "reminders")
    assert reminder_run["slot"] == "2030-01-15T09:30:00Z"
    assert reminder_run["items"] == {kind: len(keys) for kind, keys in expected.items()}

    subscription_run = next(doc for doc in runs if doc["job"] == "subscriptions")
    assert subscription_run["items"] == {"renewals": 3, "downgrades": 3, "cancellations": 3, "boards_archived": 6}

    notifications = await db["notifications"].find().to_list(None)
    keys = Counter(doc["dedupe_key"] for doc in notifications)
    assert set(keys.values()) == {1}
    for kind, wanted in expected.items():
        assert {doc["dedupe_key"] for doc in notifications if doc["type"] == kind} == wanted
    by_type = Counter(doc["type"] for doc in notifications)
    assert by_type == {"task_overdue": 10, "task_due_soon": 15, "subscription_renewal": 3, "plan_downgraded": 6}

    # One renewal checkout per renewing subscription, none for anybody else.
    checkouts = await db["checkouts"].find().to_list(None)
    assert sorted(c["user_id"] for c in checkouts) == sorted(users["renew"])
    assert all(c["status"] == "pending" and c["amount"] == 1900 for c in checkouts)
    subs = {doc["_id"]: doc async for doc in db["subscriptions"].find()}
    assert {subs[u]["status"] for u in users["renew"]} == {"past_due"}
    assert {subs[u]["status"] for u in users["expire"]} == {"expired"}
    assert {subs[u]["status"] for u in users["cancel"]} == {"cancelled"}
    untouched = {(subs[u]["status"], subs[u]["plan"]) for u in users["untouched"]}
    assert untouched == {("active", "pro"), ("past_due", "pro")}
    plans = {doc["_id"]: doc["plan"] async for doc in db["users"].find()}
    assert {plans[u] for u in users["expire"] + users["cancel"]} == {"free"}
    assert {plans[u] for u in users["renew"] + users["untouched"]} == {"pro"}
    for user_id in users["expire"]:
        boards = await db["boards"].find({"owner_id": user_id}).sort("updated_at", -1).to_list(None)
        assert [b["archived_at"] is not None for b in boards] == [False, False, False, True, True]


async def test_a_second_run_in_the_same_minute_does_nothing(db, worker_env, run_worker):
    await seed_reminders(db, NOW, users=1)
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(reminders="* * * * *")}
    first = run_worker("run-due", "--now", stamp(NOW), extra_env=env)
    second = run_worker("run-due", "--now", stamp(NOW + timedelta(seconds=30)), extra_env=env)
    assert first.returncode == second.returncode == 0
    assert len(first.lines("job_run")) == 1
    assert second.lines("job_run") == []
    assert second.lines("worker_run")[0]["ran"] == 0
