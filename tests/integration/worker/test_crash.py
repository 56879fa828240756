"""A worker killed in the middle of a slot: the next run after the lease finishes the slot and
repeats none of the items the dead one completed."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.eventually import eventually

from .conftest import schedules, stamp, worker_argv
from .seed import add_subscription, add_task, add_user, reminder_key

NOW = datetime(2030, 2, 1, 12, 0, 10, tzinfo=UTC)
SLOT = "2030-02-01T12:00:00Z"
LEASE = timedelta(minutes=2)  # the reminders job's lease


async def test_crashed_reminder_slot_is_completed_without_repeats(db, run_worker):
    user = await add_user(db)
    tasks = [await add_task(db, user["_id"], NOW.replace(second=0) + timedelta(hours=1) - timedelta(seconds=i))
             for i in range(6)]
    wanted = {reminder_key("task_due_soon", t) for t in tasks}
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(reminders="* * * * *")}

    crashed = run_worker("run-due", "--now", stamp(NOW),
                         extra_env={**env, "COLLABRY_WORKER_CRASH_AFTER_ITEMS": "reminders:2"})
    assert crashed.returncode == 70  # exited abruptly, recording nothing
    run = await db["job_runs"].find_one({"_id": f"reminders:{SLOT}"})
    assert (run["status"], run["attempt"]) == ("running", 1)
    assert await db["notifications"].count_documents({}) == 2

    # Within the lease the slot still belongs to the dead process: nobody touches it.
    early = run_worker("run-due", "--now", stamp(NOW + LEASE - timedelta(seconds=5)), extra_env=env)
    assert early.returncode == 0
    assert SLOT not in {line["slot"] for line in early.lines("job_run")}
    assert await db["notifications"].count_documents({}) == 2

    late = run_worker("run-due", "--now", stamp(NOW + LEASE + timedelta(seconds=5)), extra_env=env)
    assert late.returncode == 0, late.stderr
    retry = next(line for line in late.lines("job_run") if line["slot"] == SLOT)
    assert (retry["attempt"], retry["outcome"], retry["took_over"]) == (2, "done", "running")
    assert retry["items"] == {"task_due_soon": 4}  # only the four the dead process had not sent
    run = await db["job_runs"].find_one({"_id": f"reminders:{SLOT}"})
    assert (run["status"], run["attempt"], run["previous_error"]) == ("done", 2, "abandoned")
    notifications = await db["notifications"].find().to_list(None)
    assert sorted(n["dedupe_key"] for n in notifications) == sorted(wanted)
    assert (await db["job_stats"].find_one({"_id": "reminders"}))["failures"] == 1


async def test_a_failed_slot_is_retried_and_gives_up_after_its_attempts(db, run_worker):
    user = await add_user(db)
    await add_task(db, user["_id"], NOW.replace(second=0))
    # A task the job cannot read makes every attempt fail.
    await db["planner_tasks"].insert_one({"_id": "broken", "user_id": user["_id"], "done": False,
                                          "due_at": NOW.replace(second=0) - timedelta(seconds=1)})
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(reminders="0 12 * * *")}  # one slot a day: no newer slots
    outcomes = []
    for minutes in range(0, 7):
        result = run_worker("run-due", "--now", stamp(NOW + timedelta(minutes=minutes)), extra_env=env)
        outcomes.append((result.returncode, [line["outcome"] for line in result.lines("job_run")]))
    # 5 attempts (one per minute, the retry delay is 30 s), each failing with exit 1; then it stays failed.
    assert outcomes == [(1, ["failed"])] * 5 + [(0, [])] * 2
    run = await db["job_runs"].find_one({"_id": f"reminders:{SLOT}"})
    assert (run["status"], run["attempt"]) == ("failed", 5)
    assert "KeyError" in run["error"]
    assert (await db["job_stats"].find_one({"_id": "reminders"}))["failures"] == 5


async def test_crashed_subscription_slot_creates_each_renewal_once(db, run_worker):
    end = NOW.replace(second=0) - timedelta(minutes=1)
    users = [await add_user(db, plan="pro") for _ in range(3)]
    for user in users:
        await add_subscription(db, user["_id"], plan="pro", status="active", period_end=end)
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(subscriptions="*/5 * * * *")}

    crashed = run_worker("run-due", "--now", stamp(NOW),
                         extra_env={**env, "COLLABRY_WORKER_CRASH_AFTER_ITEMS": "subscriptions:1"})
    assert crashed.returncode == 70
    assert await db["checkouts"].count_documents({}) == 1

    late = run_worker("run-due", "--now", stamp(NOW + timedelta(minutes=5, seconds=5)), extra_env=env)
    assert late.returncode == 0, late.stderr
    # The slot of the crash is superseded by the newer slot (subscriptions catch up the latest slot
    # only), whose cumulative query finishes the two renewals that were left.
    assert [(line["slot"], line["items"]) for line in late.lines("job_run")] == [
        ("2030-02-01T12:05:00Z", {"renewals": 2})]
    checkouts = await db["checkouts"].find().to_list(None)
    assert sorted(c["user_id"] for c in checkouts) == sorted(u["_id"] for u in users)
    assert len({c["key"] for c in checkouts}) == 3
    assert await db["notifications"].count_documents({"type": "subscription_renewal"}) == 3
    assert {s["status"] async for s in db["subscriptions"].find()} == {"past_due"}


@pytest.mark.slow
async def test_sigterm_mid_slot_records_it_for_an_immediate_takeover(db, worker_env):
    user = await add_user(db)
    due = NOW.replace(second=0) + timedelta(hours=1)
    total = 1000  # enough work to still be running when the signal arrives, even on a fast machine
    await db["planner_tasks"].insert_many([
        {"_id": f"t{i:04d}", "user_id": user["_id"], "title": f"Task {i}", "due_at": due - timedelta(seconds=i % 50),
         "done": False, "created_at": NOW - timedelta(days=1), "updated_at": NOW - timedelta(days=1)}
        for i in range(total)])
    env = {**os.environ, **worker_env, "COLLABRY_WORKER_SCHEDULES": schedules(reminders="* * * * *")}
    proc = subprocess.Popen(worker_argv("run-due", "--now", stamp(NOW)), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    async def mid_slot() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        return await db["job_runs"].count_documents({"_id": f"reminders:{SLOT}"}) > 0

    await eventually(mid_slot, 60, "the run to be mid-slot", interval=0.01)  # stop it once it is mid-slot
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # a stop is not a failure worth an alert
    assert '"error": "interrupted"' in err
    run = await db["job_runs"].find_one({"_id": f"reminders:{SLOT}"})
    assert (run["status"], run["error"]) == ("failed", "interrupted")
    sent = await db["notifications"].count_documents({})
    assert sent < total
    assert await db["job_stats"].find_one({"_id": "reminders"}) is None  # a stop is not counted as a failure

    # No lease to wait out: the very next run (same minute) takes the slot over and finishes it.
    again = subprocess.run(worker_argv("run-due", "--now", stamp(NOW + timedelta(seconds=1))), env=env,
                           capture_output=True, text=True, timeout=240, check=False)
    assert again.returncode == 0, again.stderr
    run = await db["job_runs"].find_one({"_id": f"reminders:{SLOT}"})
    assert (run["status"], run["attempt"], run["items"]) == ("done", 2, {"task_due_soon": total - sent})
    assert await db["notifications"].count_documents({}) == total
