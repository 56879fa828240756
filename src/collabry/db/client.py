"""The PyMongo async client, with slow-command logging through command monitoring.

Works against FerretDB v2 on PostgreSQL + DocumentDB (the appliance's database) and MongoDB 7/8:
no change streams, transactions or TTL indexes anywhere in the code base (expiry is the worker's
job), and every conditional write is a single-document update, atomic on both.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import structlog
from bson import ObjectId
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from ..config import Settings
from ..metrics import DB_SLOW_COMMANDS

log = structlog.get_logger("collabry.db")

Document = dict[str, Any]
Database = AsyncDatabase[Document]  # the type repositories receive
Client = AsyncMongoClient[Document]


class SlowCommandLogger(monitoring.CommandListener):
    """Logs every command slower than the threshold (default 1 s)."""

    def __init__(self, threshold_ms: int) -> None:
        self.threshold_us = threshold_ms * 1000

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.duration_micros >= self.threshold_us:
            DB_SLOW_COMMANDS.labels(event.command_name).inc()
            log.warning(
                "db_slow_command",
                command=event.command_name,
                database=event.database_name,
                duration_ms=round(event.duration_micros / 1000, 1),
            )

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if event.duration_micros >= self.threshold_us:
            DB_SLOW_COMMANDS.labels(event.command_name).inc()
            log.warning("db_slow_command_failed", command=event.command_name, failure=str(event.failure))


def create_client(settings: Settings, *, timeout_ms: int = 5000) -> Client:
    # Connection and selection timeouts are short so an outage shows up in /ready quickly;
    # the driver reconnects by itself once the server is back.
    return AsyncMongoClient(
        settings.database_uri,
        tz_aware=True,
        connect=False,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        retryWrites=False,  # FerretDB has no retryable writes
        event_listeners=[SlowCommandLogger(settings.slow_query_ms)],
        appname="collabry",
    )


def new_id() -> str:
    """Opaque ids: ObjectId hex strings (sortable by creation time)."""
    return str(ObjectId())


def bson_time(value: datetime) -> datetime:
    """``value`` as the database stores it: UTC, millisecond precision (BSON dates hold no more),
    so what an API returns at creation equals what later reads return."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    return bson_time(datetime.now(UTC))


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def ping(db: Database, timeout: float) -> None:
    started = time.monotonic()
    await db.command("ping", maxTimeMS=int(timeout * 1000))
    if time.monotonic() - started > timeout:
        raise TimeoutError("database ping too slow")
