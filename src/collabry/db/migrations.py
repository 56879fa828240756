"""The migrate step (`collabry migrate`, and at the start of every process): creates every index
declared in ``indexes.INDEXES``, drops the retired ones (``indexes.RETIRED``), brings documents of
an older schema up to date (``upgrade``) and records the schema version.

Idempotent: creating an index that exists with the same options is a no-op, and the upgrade can
run again (or in two processes at once) with the same result.
"""

from __future__ import annotations

import contextlib

import structlog
from pymongo.errors import DuplicateKeyError, OperationFailure

from .client import Database, utcnow
from .indexes import INDEXES, RETIRED, Index
from .upgrade import fold_schema_1, needs_fold

__all__ = ["INDEXES", "SCHEMA_VERSION", "Index", "migrate"]

log = structlog.get_logger("collabry.migrate")

# 2: counters and revocations as conditional updates (DocumentDB), no unit or claim documents
SCHEMA_VERSION = 2


async def _index_names(db: Database, collection: str) -> set[str]:
    return {str(index["name"]) async for index in await db[collection].list_indexes()}


async def migrate(db: Database) -> int:
    # Only missing indexes are created: every process migrates at start while it already serves,
    # and on DocumentDB a create_index racing with writes to the same collection can end in a
    # deadlock that PostgreSQL resolves by failing one of them (a request, as likely as not).
    existing: dict[str, set[str]] = {}
    for index in INDEXES:
        if index.collection not in existing:
            existing[index.collection] = await _index_names(db, index.collection)
        if index.options["name"] not in existing[index.collection]:
            await db[index.collection].create_index(index.keys, **index.options)
    for collection, name in RETIRED:
        if name in existing.get(collection, set()):
            with contextlib.suppress(OperationFailure):  # dropped meanwhile by another process
                await db[collection].drop_index(name)
    if needs_fold(await db["meta"].find_one({"_id": "schema"})):
        await fold_schema_1(db)
    try:
        await db["meta"].update_one(
            {"_id": "schema"},
            {"$set": {"version": SCHEMA_VERSION, "migrated_at": utcnow()}},
            upsert=True,
        )
    except DuplicateKeyError:
        pass  # another process migrating at the same moment inserted it first: same content

    log.info("migrated", indexes=len(INDEXES), schema_version=SCHEMA_VERSION)
    return len(INDEXES)
