"""Bytes stored per user against the plan's storage limit.

A reservation is one conditional update of the user's total (``db.storage``): concurrent uploads
cannot overshoot the limit, and a source is counted at most once, so a repeated release is harmless.
"""

from __future__ import annotations

from ..db.client import Database
from ..db.storage import StorageUsage


async def used_bytes(db: Database, user_id: str) -> int:
    return await StorageUsage(db).used_bytes(user_id)


async def reserve(db: Database, user_id: str, source_id: str, size: int, limit: int) -> bool:
    """Count ``size`` bytes for ``source_id`` if the total stays within ``limit``; False otherwise."""
    return await StorageUsage(db).reserve(user_id, source_id, size, limit)


async def release(db: Database, user_id: str, source_id: str) -> None:
    """Stop counting a source's bytes (idempotent per source)."""
    await StorageUsage(db).release(user_id, source_id)
