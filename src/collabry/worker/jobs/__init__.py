"""The jobs, one module each; ``JOBS`` is the list the worker schedules."""

from __future__ import annotations

from ..job import Job
from . import accounts, cleanup, reminders, stale_streams, subscriptions, uploads, usage_persist

JOBS: tuple[Job, ...] = (
    reminders.JOB,
    subscriptions.JOB,
    stale_streams.JOB,
    cleanup.JOB,
    uploads.JOB,
    accounts.JOB,
    usage_persist.JOB,
)
