"""The worker's command line: exit statuses, the metrics textfile, `status`, manual runs, `--loop`."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from tests.support.eventually import eventually_sync

from .conftest import schedules, stamp
from .seed import add_task, add_user

NOW = datetime(2030, 6, 1, 10, 0, 30, tzinfo=UTC)


def metrics(text: str) -> dict[tuple[str, str], float]:
    return {(sample.name, sample.labels.get("job", "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_metrics_file_describes_every_job(db, run_worker, tmp_path):
    prom = tmp_path / "textfile" / "collabry-worker.prom"
    prom.parent.mkdir()
    user = await add_user(db)
    await add_task(db, user["_id"], NOW.replace(second=0))
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(reminders="* * * * *", cleanup="0 3 * * *")}

    result = run_worker("run-due", "--metrics-file", str(prom), "--now", stamp(NOW), extra_env=env)

    assert result.returncode == 0, result.stderr
    assert [p.name for p in prom.parent.iterdir()] == ["collabry-worker.prom"]  # no temporary file left
    assert prom.stat().st_mode & 0o777 == 0o644
    values = metrics(prom.read_text())
    assert values[("collabry_worker_job_items", "reminders")] == 1
    assert values[("collabry_worker_job_failures_total", "reminders")] == 0
    assert values[("collabry_worker_job_duration_seconds", "cleanup")] > 0
    finished = values[("collabry_worker_job_last_success_timestamp_seconds", "reminders")]
    assert NOW.timestamp() - 5 < finished < NOW.timestamp() + 60  # the scheduling clock's time
    assert ("collabry_worker_job_last_success_timestamp_seconds", "subscriptions") not in values  # never ran
    assert values[("collabry_worker_job_failures_total", "subscriptions")] == 0
    assert values[("collabry_worker_last_run_success", "")] == 1


async def test_a_failing_job_exits_1_and_shows_in_metrics_and_status(db, run_worker, tmp_path):
    prom = tmp_path / "worker.prom"
    user = await add_user(db)
    await db["planner_tasks"].insert_one({"_id": "no-title", "user_id": user["_id"], "done": False,
                                          "due_at": NOW.replace(second=0)})
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(reminders="* * * * *", stale_streams="* * * * *")}

    result = run_worker("run-due", "--metrics-file", str(prom), "--now", stamp(NOW), extra_env=env)

    assert result.returncode == 1
    outcomes = {line["job"]: line["outcome"] for line in result.lines("job_run")}
    assert outcomes == {"reminders": "failed", "stale_streams": "done"}
    values = metrics(prom.read_text())
    assert values[("collabry_worker_job_failures_total", "reminders")] == 1
    assert values[("collabry_worker_last_run_success", "")] == 0

    status = run_worker("status", "--json", extra_env=env)
    assert status.returncode == 0
    report = json.loads(status.stdout)
    jobs = {job["name"]: job for job in report["jobs"]}
    assert jobs["reminders"]["failures"] == 1 and jobs["reminders"]["schedule"] == "* * * * *"
    assert jobs["cleanup"]["schedule"] == "off"
    failed = next(run for run in report["runs"] if run["job"] == "reminders")
    assert failed["status"] == "failed" and "KeyError" in failed["error"]
    text = run_worker("status", extra_env=env).stdout
    assert "reminders:2030-06-01T10:00:00Z" in text and "failed" in text


async def test_manual_run_and_unknown_job(db, run_worker):
    manual = run_worker("run", "cleanup", "--json")
    assert manual.returncode == 0, manual.stderr
    outcome = json.loads(manual.stdout)
    assert outcome["outcome"] == "done" and outcome["slot"].startswith("manual-")
    run = await db["job_runs"].find_one({"job": "cleanup"})
    assert run["trigger"] == "manual" and run["status"] == "done"
    # A manual run is not a scheduled slot: the schedule still runs its own.
    due = run_worker("run-due", extra_env={"COLLABRY_WORKER_SCHEDULES": schedules(cleanup="0 3 * * *")})
    assert [line["job"] for line in due.lines("job_run")] == ["cleanup"]

    unknown = run_worker("run", "nonsense")
    assert unknown.returncode == 2
    assert "unknown job 'nonsense'" in unknown.stderr


def test_bad_schedule_is_a_configuration_error(run_worker):
    result = run_worker("run-due", extra_env={"COLLABRY_WORKER_SCHEDULES": "reminders=every minute"})
    assert result.returncode == 78
    assert "COLLABRY_WORKER_SCHEDULES" in result.stderr and "reminders" in result.stderr


def test_loop_mode_runs_and_stops_on_sigterm(spawn, tmp_path):
    prom = tmp_path / "loop.prom"
    worker = spawn("worker", "worker", "run-due", "--loop", "--metrics-file", str(prom),
                   extra_env={"COLLABRY_WORKER_SCHEDULES": schedules(stale_streams="* * * * *")})

    def written() -> bool:
        assert worker.running, worker.tail()
        return prom.exists()

    eventually_sync(written, 60, "the metrics file", interval=0.1)
    assert prom.exists(), worker.tail()
    assert '"event": "worker_run"' in worker.tail()
    worker.send(signal.SIGTERM)
    assert worker.proc is not None
    assert worker.proc.wait(timeout=15) == 0
