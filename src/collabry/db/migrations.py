"""Every index the application needs, created in one place (`collabry migrate`, and at start).

Idempotent: creating an index that exists with the same options is a no-op. Other modules
register their indexes here, so there is one list to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from .client import Database, utcnow

log = structlog.get_logger("collabry.migrate")

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Index:
    collection: str
    keys: list[tuple[str, int]]
    options: dict[str, Any] = field(default_factory=dict)


INDEXES: list[Index] = [
    Index("users", [("email", 1)], {"unique": True, "name": "email_unique"}),
    Index("refresh_tokens", [("family_id", 1)], {"name": "family"}),
    Index("refresh_tokens", [("expires_at", 1)], {"name": "expires"}),
    Index("auth_sessions", [("user_id", 1), ("revoked_at", 1)], {"name": "user_active"}),
    Index("auth_sessions", [("expires_at", 1)], {"name": "expires"}),
]


def register(*indexes: Index) -> None:
    for index in indexes:
        if index not in INDEXES:
            INDEXES.append(index)


async def migrate(db: Database) -> int:
    for index in INDEXES:
        await db[index.collection].create_index(index.keys, **index.options)
    await db["meta"].update_one(
        {"_id": "schema"},
        {"$set": {"version": SCHEMA_VERSION, "migrated_at": utcnow()}},
        upsert=True,
    )
    log.info("migrated", indexes=len(INDEXES), schema_version=SCHEMA_VERSION)
    return len(INDEXES)
