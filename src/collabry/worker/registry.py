"""The jobs this worker runs, with their schedules resolved from the configuration."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..config import ConfigError, Settings
from .job import Job
from .schedule import Schedule, ScheduleError, parse_overrides, parse_schedule

SCHEDULES_VAR = "COLLABRY_WORKER_SCHEDULES"
DISABLED = frozenset({"off", "disabled", "never"})


@dataclass(frozen=True)
class Scheduled:
    job: Job
    schedule: Schedule | None  # None: disabled by configuration (still runnable by hand)
    ledger_name: str  # the job's name, or ``name@host`` for a job that works on this host's files

    @property
    def name(self) -> str:
        return self.job.name


def all_jobs() -> list[Job]:
    from .jobs import JOBS

    return list(JOBS)


def resolve(settings: Settings, jobs: list[Job] | None = None) -> list[Scheduled]:
    """Each job with its schedule; a bad ``COLLABRY_WORKER_SCHEDULES`` is a configuration error."""
    jobs = all_jobs() if jobs is None else jobs
    by_name = {job.name: job for job in jobs}
    try:
        overrides = dict(parse_overrides(settings.worker_schedules))
    except ScheduleError as exc:
        raise ConfigError(SCHEDULES_VAR, str(exc)) from None
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        raise ConfigError(SCHEDULES_VAR, f"unknown job {unknown[0]!r}; jobs are {', '.join(sorted(by_name))}")
    host = socket.gethostname()
    resolved = []
    for job in jobs:
        spec = overrides.get(job.name, job.schedule)
        schedule: Schedule | None = None
        if spec.strip().lower() not in DISABLED:
            try:
                schedule = parse_schedule(spec)
            except ScheduleError as exc:
                raise ConfigError(SCHEDULES_VAR, f"{job.name}: {exc}") from None
        resolved.append(Scheduled(job, schedule, f"{job.name}@{host}" if job.host_scoped else job.name))
    return resolved


def find(scheduled: list[Scheduled], name: str) -> Scheduled | None:
    for item in scheduled:
        if item.name == name:
            return item
    return None
