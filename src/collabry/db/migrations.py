"""The migrate step (`collabry migrate`, and at the start of every process): creates every index
declared in ``indexes.INDEXES``, brings documents of an older schema up to date (``upgrade``) and
records the schema version.

Idempotent: creating an index that exists with the same options is a no-op, and the upgrade can
run again (or in two processes at once) with the same result.
"""

from __future__ import annotations

import structlog
from pymongo.errors import DuplicateKeyError

from .client import Database, utcnow
from .indexes import INDEXES, Index
from .upgrade import fold_schema_1, needs_fold

__all__ = ["INDEXES", "SCHEMA_VERSION", "Index", "migrate"]

log = structlog.get_logger("collabry.migrate")

# 2: counters and revocations as conditional updates (DocumentDB), no unit or claim documents
SCHEMA_VERSION = 2


async def migrate(db: Database) -> int:
    for index in INDEXES:
        await db[index.collection].create_index(index.keys, **index.options)
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
