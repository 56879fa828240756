"""`collabry worker status`: the jobs, their schedules and their recent runs, as text or JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..db.client import iso
from .ledger import RUNNING, JobLedger
from .registry import Scheduled
from .schedule import slot_name


def _run(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    status = doc["status"]
    if status == RUNNING and doc["lease_until"] <= now:
        status = "abandoned"  # its process died; a later run takes it over or a newer slot supersedes it
    return {
        "id": doc["_id"],
        "job": doc["job"],
        "slot": doc["slot"],
        "trigger": doc.get("trigger"),
        "status": status,
        "attempt": doc.get("attempt"),
        "host": doc.get("host"),
        "startedAt": iso(doc.get("started_at")),
        "finishedAt": iso(doc.get("finished_at")),
        "durationSeconds": doc.get("duration"),
        "items": doc.get("items") or {},
        "error": doc.get("error"),
    }


async def gather(ledger: JobLedger, jobs: list[Scheduled], *, now: datetime, limit: int,
                 job: str | None = None) -> dict[str, Any]:
    summary = []
    for item in jobs:
        if job is not None and item.name != job:
            continue
        done = await ledger.last_success(item.ledger_name)
        latest = item.schedule.latest(now) if item.schedule else None
        summary.append(
            {
                "name": item.name,
                "ledgerName": item.ledger_name,
                "schedule": item.schedule.spec if item.schedule else "off",
                "catchUp": item.job.catch_up.value,
                "latestSlot": slot_name(latest) if latest else None,
                "lastSuccessAt": iso(done["finished_at"]) if done else None,
                "failures": await ledger.failures(item.ledger_name),
            }
        )
    ledger_name = next((i.ledger_name for i in jobs if i.name == job), job)
    runs = [_run(doc, now) for doc in await ledger.recent(job=ledger_name, limit=limit)]
    return {"now": iso(now), "jobs": summary, "runs": runs}


def render_text(status: dict[str, Any]) -> str:
    lines = [f"{'JOB':<16} {'SCHEDULE':<16} {'CATCH-UP':<8} {'LAST SUCCESS':<26} FAILURES"]
    for job in status["jobs"]:
        lines.append(
            f"{job['name']:<16} {job['schedule']:<16} {job['catchUp']:<8} "
            f"{job['lastSuccessAt'] or '-':<26} {job['failures']}"
        )
    lines.append("")
    lines.append(f"{'RUN':<48} {'STATUS':<9} {'TRY':>3} {'SECONDS':>8} {'HOST':<20} ITEMS / ERROR")
    for run in status["runs"]:
        seconds = f"{run['durationSeconds']:.2f}" if run["durationSeconds"] is not None else "-"
        detail = run["error"] or " ".join(f"{k}={v}" for k, v in sorted(run["items"].items())) or "-"
        lines.append(
            f"{run['id']:<48} {run['status']:<9} {run['attempt'] or 0:>3} {seconds:>8} "
            f"{(run['host'] or '-')[:20]:<20} {detail}"
        )
    return "\n".join(lines)
