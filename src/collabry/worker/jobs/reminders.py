"""Planner reminders: ``task_due_soon`` when a task comes within an hour of its due time and
``task_overdue`` when the due time passes, each exactly once per task and due date.

Slot ``S`` (previous slot ``P``) handles the tasks that crossed a threshold during ``(P, S]``:
``due_at`` in ``(P, S]`` is newly overdue, ``due_at`` in ``(P + 1h, S + 1h]`` newly due soon, and a
task created or rescheduled during ``(P, S]`` that is already due within the hour is due soon too.
Consecutive slots tile time, which is why missed slots are caught up one by one after downtime:
each covers its own stretch. The notification's unique ``dedupe_key`` (type, task, due date) makes
every reminder exactly-once even when windows overlap or a crashed slot is run again; a task whose
due date moves gets reminders for the new date.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ...db.client import iso
from ...db.planner import PlannerTasks
from ...domain.notifications import notify
from ..job import CatchUp, Job, JobContext

SOON = timedelta(hours=1)


def dedupe_key(kind: str, task: dict[str, Any]) -> str:
    return f"{kind}:{task['_id']}:{iso(task['due_at'])}"


async def _remind(ctx: JobContext, kind: str, task: dict[str, Any]) -> None:
    due = iso(task["due_at"])
    if kind == "task_overdue":
        title, body = "Task overdue", f"\u201c{task['title']}\u201d was due at {due}."
    else:
        title, body = "Task due soon", f"\u201c{task['title']}\u201d is due at {due}."
    created = await notify(ctx.db, ctx.emitter, task["user_id"], kind, title, body, dedupe_key=dedupe_key(kind, task))
    if created is not None:
        ctx.done(kind)


async def send_reminders(ctx: JobContext) -> None:
    since, slot = ctx.since, ctx.slot
    tasks = PlannerTasks(ctx.db)
    for task in await tasks.open_due(since, slot):
        await _remind(ctx, "task_overdue", task)
    soon: dict[str, dict[str, Any]] = {}
    for task in await tasks.open_due(since + SOON, slot + SOON):
        soon[task["_id"]] = task
    # already due within the hour, but changed (created, moved) since the previous slot
    for task in await tasks.open_due_changed(slot, slot + SOON, since):
        soon.setdefault(task["_id"], task)
    for task in sorted(soon.values(), key=lambda t: (t["due_at"], t["_id"])):
        await _remind(ctx, "task_due_soon", task)


JOB = Job(
    name="reminders",
    body=send_reminders,
    schedule="* * * * *",
    catch_up=CatchUp.ALL,
    catch_up_window=timedelta(hours=24),
    lease=timedelta(minutes=2),
    timeout=timedelta(minutes=5),
    max_attempts=5,
    retry_after=timedelta(seconds=30),
    description="task_due_soon and task_overdue notifications, once per task and due date",
)
