"""Job metrics as a Prometheus textfile, for node_exporter's textfile collector.

A oneshot has no /metrics endpoint to scrape, so each run writes a ``*.prom`` file that
node_exporter serves with the host's other metrics. The values come from the ledger, not from the
process: they describe the job across all hosts (whichever host ran the last slot), so an alert on
``time() - collabry_worker_job_last_success_timestamp_seconds`` works wherever it is scraped.

The file is written to a temporary name in the same directory and renamed over the target, so
node_exporter never reads half a file (its collector only reads names ending in ``.prom``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .ledger import JobLedger
from .registry import Scheduled
from .runner import RunReport


class _Snapshot:
    """A collector that yields metric families computed beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self.families)


async def render(ledger: JobLedger, jobs: list[Scheduled], report: RunReport | None) -> bytes:
    last_success = GaugeMetricFamily(
        "collabry_worker_job_last_success_timestamp_seconds",
        "Unix time at which the job last finished a slot successfully (any host)",
        labels=["job"],
    )
    failures = CounterMetricFamily(
        "collabry_worker_job_failures",
        "Failed, timed-out or abandoned attempts of the job (any host)",
        labels=["job"],
    )
    duration = GaugeMetricFamily(
        "collabry_worker_job_duration_seconds", "Duration of the job's last successful slot", labels=["job"]
    )
    items = GaugeMetricFamily(
        "collabry_worker_job_items", "Items the job's last successful slot handled", labels=["job"]
    )
    for item in jobs:
        done = await ledger.last_success(item.ledger_name)
        failures.add_metric([item.name], await ledger.failures(item.ledger_name))
        if done is not None:
            last_success.add_metric([item.name], done["finished_at"].timestamp())
            duration.add_metric([item.name], float(done.get("duration") or 0.0))
            items.add_metric([item.name], float(sum((done.get("items") or {}).values())))
    families: list[Metric] = [last_success, failures, duration, items]
    if report is not None:
        run_time = GaugeMetricFamily(
            "collabry_worker_last_run_timestamp_seconds", "Unix time of this host's last `worker run-due`"
        )
        run_time.add_metric([], report.started.timestamp())
        run_ok = GaugeMetricFamily(
            "collabry_worker_last_run_success", "Whether this host's last `worker run-due` succeeded (1) or not (0)"
        )
        run_ok.add_metric([], 1.0 if report.ok else 0.0)
        families += [run_time, run_ok]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o644)  # node_exporter runs as its own user
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
