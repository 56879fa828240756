"""Slots are UTC; after downtime each job catches up by its policy (reminders: every missed slot,
cleanup: once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .conftest import schedules, stamp
from .seed import add_task, add_user, reminder_key

T0 = datetime(2030, 4, 2, 8, 0, 5, tzinfo=UTC)


async def test_missed_slots_are_caught_up_by_policy(db, run_worker):
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(reminders="*/15 * * * *", cleanup="0 * * * *")}
    first = run_worker("run-due", "--now", stamp(T0), extra_env=env)
    assert first.returncode == 0, first.stderr
    assert sorted(line["slot"] for line in first.lines("job_run")) == ["2030-04-02T08:00:00Z"] * 2

    # While no worker runs (08:00 -> 11:10), a task falls due at 09:40.
    user = await add_user(db)
    task = await add_task(db, user["_id"], datetime(2030, 4, 2, 9, 40, tzinfo=UTC))

    after = run_worker("run-due", "--now", stamp(T0 + timedelta(hours=3, minutes=10)), extra_env=env)
    assert after.returncode == 0, after.stderr
    slots = {job: [line["slot"][11:16] for line in after.lines("job_run") if line["job"] == job]
             for job in ("reminders", "cleanup")}
    quarters = [f"{h:02d}:{m:02d}" for h in (8, 9, 10) for m in (0, 15, 30, 45)]
    assert slots["reminders"] == [*quarters[1:], "11:00"]  # every missed slot, 08:15 to 11:00
    assert slots["cleanup"] == ["11:00"]  # once, for the latest slot only
    # The reminder windows tile the downtime: the task got each reminder once, from its own slot.
    notes = {n["type"]: n async for n in db["notifications"].find()}
    assert set(notes) == {"task_due_soon", "task_overdue"}
    assert notes["task_overdue"]["dedupe_key"] == reminder_key("task_overdue", task)
    runs = {doc["slot"][11:16]: doc["items"] async for doc in db["job_runs"].find({"job": "reminders"})}
    assert runs["08:45"] == {"task_due_soon": 1} and runs["09:45"] == {"task_overdue": 1}


async def test_catch_up_is_bounded_by_the_window(db, run_worker):
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(reminders="0 * * * *")}
    assert run_worker("run-due", "--now", stamp(T0), extra_env=env).returncode == 0
    # Three days later only the reminders' 24-hour catch-up window is replayed.
    after = run_worker("run-due", "--now", stamp(T0 + timedelta(days=3)), extra_env=env)
    slots = [line["slot"] for line in after.lines("job_run")]
    assert len(slots) == 24
    assert slots[0] == "2030-04-04T09:00:00Z" and slots[-1] == "2030-04-05T08:00:00Z"


async def test_slots_are_utc_whatever_the_host_time_zone(db, run_worker):
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(cleanup="0 0 * * *"), "TZ": "Pacific/Auckland"}
    # 09:30 in India is 04:00 UTC: the latest midnight slot is today's UTC midnight.
    result = run_worker("run-due", "--now", "2030-04-02T09:30:00+05:30", extra_env=env)
    assert result.returncode == 0, result.stderr
    (line,) = result.lines("job_run")
    assert line["slot"] == "2030-04-02T00:00:00Z"
    run = await db["job_runs"].find_one({"job": "cleanup"})
    assert run["_id"] == "cleanup:2030-04-02T00:00:00Z"
    assert run["slot_at"] == datetime(2030, 4, 2, tzinfo=UTC)
    assert run["started_at"].utcoffset() == timedelta(0)
