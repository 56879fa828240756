"""Notebooks (owner only) and their recycle bin.

Collection ``notebooks``: ``{_id, user_id, title, created_at, updated_at, deleted_at}``.
Deleting a notebook moves it (and its sources) to the recycle bin for ``Settings.recycle_days``:
its sources leave the search index at once, so answers never cite deleted material, while their
files stay; a restore indexes them again, and the worker's purge removes the files for good.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from ..config import Settings
from ..db.client import Database, iso, new_id, utcnow
from ..db.notebooks import Notebooks
from ..db.sources import Sources
from ..errors import NotFound
from . import policy, quotas, sources
from .policy import Actor
from .sources import SourceEngine

log = structlog.get_logger("collabry.notebooks")


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "title": doc["title"],
        "createdAt": iso(doc.get("created_at")),
        "updatedAt": iso(doc.get("updated_at")),
    }


def public_deleted(doc: dict[str, Any], settings: Settings) -> dict[str, Any]:
    deleted_at: datetime = doc["deleted_at"]
    return {**public(doc), "deletedAt": iso(deleted_at),
            "purgeAt": iso(deleted_at + timedelta(days=settings.recycle_days))}


async def create(db: Database, settings: Settings, who: Actor, title: str) -> dict[str, Any]:
    notebook_id = new_id()
    await quotas.take(db, settings, who, "notebooks", notebook_id)
    now = utcnow()
    doc = {"_id": notebook_id, "user_id": who.user_id, "title": title, "created_at": now, "updated_at": now,
           "deleted_at": None}
    try:
        await Notebooks(db).insert(doc)
    except BaseException:
        await quotas.give_back(db, who.user_id, "notebooks", notebook_id)
        raise
    return doc


async def list_for(db: Database, user_id: str) -> list[dict[str, Any]]:
    return await Notebooks(db).live_of(user_id)


async def get(db: Database, user_id: str, notebook_id: str) -> dict[str, Any]:
    return await policy.notebook(db, notebook_id, user_id)


async def rename(db: Database, user_id: str, notebook_id: str, title: str) -> dict[str, Any]:
    doc = await policy.notebook(db, notebook_id, user_id)
    now = utcnow()
    await Notebooks(db).rename(notebook_id, user_id, title, now)
    doc.update(title=title, updated_at=now)
    return doc


async def delete(db: Database, engine: SourceEngine, user_id: str, notebook_id: str) -> None:
    await policy.notebook(db, notebook_id, user_id)
    now = utcnow()
    await Notebooks(db).to_bin(notebook_id, user_id, now)
    live = await Sources(db).to_bin_with_notebook(notebook_id, user_id, now)
    await quotas.give_back(db, user_id, "notebooks", notebook_id)
    for doc in live:
        try:
            await engine.delete_source(doc["_id"], user_id)
        except Exception as exc:  # the purge deletes them again; the notebook is already hidden
            log.warning("unindex_failed", source_id=doc["_id"], error=str(exc))


def _cutoff(settings: Settings) -> datetime:
    return utcnow() - timedelta(days=settings.recycle_days)


async def trash(db: Database, settings: Settings, user_id: str) -> list[dict[str, Any]]:
    return await Notebooks(db).bin_of(user_id, _cutoff(settings))


async def restore(
    db: Database, settings: Settings, engine: SourceEngine, who: Actor, notebook_id: str
) -> dict[str, Any]:
    doc = await policy.deleted_notebook(db, notebook_id, who.user_id)
    deleted_at = doc["deleted_at"]
    if deleted_at <= _cutoff(settings):
        raise NotFound("notebook")
    await quotas.take(db, settings, who, "notebooks", notebook_id)
    # Only the sources that went to the bin with the notebook come back.
    binned = await Sources(db).restore_with_notebook(notebook_id, who.user_id, deleted_at)
    await Notebooks(db).restore(notebook_id, who.user_id, utcnow())
    for source in binned:
        await sources.reingest(db, settings, engine, source)
    doc.update(deleted_at=None)
    return doc
