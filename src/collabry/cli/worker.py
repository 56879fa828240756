"""`collabry worker run-due | run JOB | status`: the worker's commands.

``run-due`` is a oneshot for a systemd timer (every minute): it runs the due slots and exits 0, or 1
when a job failed or the ledger could not be reached (worth a unit failure and an alert); a bad
configuration exits 78. ``--loop`` keeps running, once a minute, for the development stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .bootstrap import settings_for
from .types import Subparsers

if TYPE_CHECKING:
    from ..config import Settings
    from ..worker.job import Clock
    from ..worker.runner import RunReport, Worker

T = TypeVar("T")

EX_FAILURE = 1
EX_USAGE = 2


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2025-01-31T09:00:00Z, got {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("worker", help="scheduled jobs: run the due slots, run one job, show the ledger")
    wsub = p.add_subparsers(dest="worker_command", required=True)

    r = wsub.add_parser("run-due", help="run every due job slot once (across all hosts) and exit")
    r.add_argument("--metrics-file", type=Path, help="write job metrics here (node_exporter textfile, *.prom)")
    r.add_argument("--loop", action="store_true", help="keep running, once a minute (development stack)")
    r.add_argument("--now", type=_instant, help="act as if the UTC time were this (replays, tests)")
    r.set_defaults(func=cmd_run_due)

    m = wsub.add_parser("run", help="run one job now, outside its schedule")
    m.add_argument("job", help="job name, e.g. reminders, subscriptions, cleanup, stale_streams, uploads")
    m.add_argument("--json", action="store_true", help="print the outcome as JSON")
    m.add_argument("--now", type=_instant, help=argparse.SUPPRESS)
    m.set_defaults(func=cmd_run)

    s = wsub.add_parser("status", help="jobs, schedules and recent runs from the ledger")
    s.add_argument("--json", action="store_true")
    s.add_argument("--job", help="only this job")
    s.add_argument("--limit", type=int, default=20, help="recent runs to show (default 20)")
    s.set_defaults(func=cmd_status)


def _settings() -> Settings:
    return settings_for("worker", require=("service-token",))


async def _with_worker(settings: Settings, clock: Clock, fn: Callable[[Worker], Awaitable[T]]) -> T:
    from ..cache.client import create_redis
    from ..db.client import create_client
    from ..worker.job import CrashHook
    from ..worker.registry import resolve
    from ..worker.runner import Worker

    jobs = resolve(settings)  # a bad schedule is a configuration error before anything connects
    # A batch process can wait longer than a request handler before calling a dependency down.
    client = create_client(settings, timeout_ms=15000)
    redis = create_redis(settings, timeout=10.0, retries=2)
    worker = Worker(
        settings, client[settings.database_name], redis, jobs, clock=clock, crash_hook=CrashHook.from_env()
    )
    from ..cache import users as user_cache

    try:
        with user_cache.registered(user_cache.UserCache(redis, settings)):  # plan downgrades, erasures
            return await fn(worker)
    finally:
        await worker.close()
        await redis.aclose()
        await client.close()


async def _write_metrics(worker: Worker, path: Path, report: RunReport) -> None:
    import structlog

    from ..worker.textfile import render, write_atomically

    try:
        data = await render(worker.ledger, worker.jobs, report)
    except Exception as exc:  # the ledger is unreachable: still publish that this run failed
        structlog.get_logger("collabry.worker").warning("metrics_from_ledger_failed", error=str(exc))
        data = await render(worker.ledger, [], report)
    try:
        write_atomically(path, data)
    except OSError as exc:
        structlog.get_logger("collabry.worker").error("metrics_file_failed", path=str(path), error=str(exc))


def cmd_run_due(args: argparse.Namespace) -> int:
    from ..worker.job import Clock

    settings = _settings()
    clock = Clock(args.now)

    async def main(worker: Worker) -> int:
        return await (_loop(worker, args.metrics_file) if args.loop else _once(worker, args.metrics_file))

    return asyncio.run(_with_worker(settings, clock, main))


def _on_stop_signals(callback: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, callback)


async def _once(worker: Worker, metrics_file: Path | None) -> int:
    import structlog

    run = asyncio.create_task(worker.run_due())

    def stop() -> None:
        run.cancel()

    _on_stop_signals(stop)
    try:
        report = await run
    except asyncio.CancelledError:
        # Stopped (unit stop, shutdown): interrupted slots are recorded and retried by the next run.
        structlog.get_logger("collabry.worker").info("worker_interrupted")
        return 0
    if metrics_file is not None:
        await _write_metrics(worker, metrics_file, report)
    return 0 if report.ok else EX_FAILURE


async def _loop(worker: Worker, metrics_file: Path | None) -> int:
    stop = asyncio.Event()
    current: asyncio.Task[Any] | None = None

    def on_signal() -> None:
        stop.set()
        if current is not None:
            current.cancel()

    _on_stop_signals(on_signal)
    while not stop.is_set():
        current = asyncio.create_task(worker.run_due())
        try:
            report = await current
        except asyncio.CancelledError:
            break
        finally:
            current = None
        if metrics_file is not None:
            await _write_metrics(worker, metrics_file, report)
        now = worker.clock.now()
        # Wake one second into the next minute, so cron slots on the minute are already due.
        delay = 61 - now.second - now.microsecond / 1e6
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..worker.job import Clock
    from ..worker.registry import find

    settings = _settings()

    async def main(worker: Worker) -> int:
        item = find(worker.jobs, args.job)
        if item is None:
            names = ", ".join(j.name for j in worker.jobs)
            print(f"collabry: unknown job {args.job!r}; jobs are {names}", file=sys.stderr)
            return EX_USAGE
        outcome = await worker.run_manual(item)
        if args.json:
            print(json.dumps(outcome.__dict__, default=str))
        else:
            detail = outcome.error or " ".join(f"{k}={v}" for k, v in sorted(outcome.items.items())) or "no items"
            print(f"{outcome.job} {outcome.slot}: {outcome.outcome} in {outcome.duration:.2f} s ({detail})")
        return 0 if outcome.outcome == "done" else EX_FAILURE

    return asyncio.run(_with_worker(settings, Clock(args.now), main))


def cmd_status(args: argparse.Namespace) -> int:
    from ..worker.job import Clock
    from ..worker.status import gather, render_text

    settings = _settings()

    async def main(worker: Worker) -> int:
        status = await gather(worker.ledger, worker.jobs, now=worker.clock.now(), limit=args.limit, job=args.job)
        print(json.dumps(status, indent=2) if args.json else render_text(status))
        return 0

    return asyncio.run(_with_worker(settings, Clock(), main))
