"""Sources: upload (a file or JSON text), hand-off to the engine, status, deletion.

An upload passes, in order: notebook ownership (404), size (413), type by content (415), the
daily upload quota (429 ``quota_exceeded``), the storage quota (403 ``storage_limit``). Only then
is the file written, under ``$STATE_DIR/uploads/`` with a generated name (``<sourceId>.<ext>``;
the client's file name is only a title), its SHA-256 recorded, the ``sources`` document inserted
and the engine asked to ingest it. A failure at any step undoes the earlier ones: the quota unit
is refunded, the bytes released, the file and document removed.

Collection ``sources``: ``{_id, user_id, notebook_id, title, kind: pdf|text|markdown,
content_type, status: processing|ready|failed, chunks, error, size, sha256, file, created_at,
updated_at, deleted_at}``. The engine sets ``status``, ``chunks`` and ``error``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import structlog

from ..config import Settings
from ..db.client import Database, iso, new_id, utcnow
from ..db.sources import Sources
from ..errors import QuotaExceeded, StorageLimit, TooLarge
from . import policy, storage, usage
from .filetypes import TEXT, Detected, detect, safe_title
from .policy import Actor

log = structlog.get_logger("collabry.sources")


class SourceEngine(Protocol):
    """What the domain needs from the engine client (``collabry.engine_client``)."""

    async def ingest(self, source_id: str, user_id: str, notebook_id: str, data: bytes, content_type: str) -> None: ...

    async def ingest_text(self, source_id: str, user_id: str, notebook_id: str, text: str) -> None: ...

    async def delete_source(self, source_id: str, user_id: str) -> None: ...


def uploads_dir(settings: Settings) -> Path:
    return settings.state_dir / "uploads"


def file_path(settings: Settings, doc: dict[str, Any]) -> Path:
    # ``file`` is always a generated bare name; taking the name part again keeps a tampered
    # document from pointing outside the uploads directory.
    return uploads_dir(settings) / Path(str(doc["file"])).name


def public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": doc["_id"],
        "title": doc["title"],
        "kind": doc.get("kind", "text"),
        "status": doc.get("status", "processing"),
        "chunks": int(doc.get("chunks") or 0),
        "size": int(doc.get("size") or 0),
        "createdAt": iso(doc.get("created_at")),
    }
    if doc.get("error"):
        out["error"] = str(doc["error"])
    return out


def _write_file(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, directory / name)


def _remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


Undo = Callable[[], Awaitable[object]]  # a compensating step; its result is not used


async def _undo_all(steps: list[Undo]) -> None:
    for step in reversed(steps):
        try:
            await step()
        except Exception as exc:  # keep undoing the rest; the worker's orphan cleanup is the backstop
            log.error("upload_undo_failed", error=str(exc))


async def add(
    db: Database,
    settings: Settings,
    engine: SourceEngine,
    who: Actor,
    notebook_id: str,
    data: bytes,
    *,
    filename: str | None = None,
    title: str | None = None,
    is_text: bool = False,
) -> dict[str, Any]:
    await policy.notebook(db, notebook_id, who.user_id)
    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"the file is over the {settings.max_upload_bytes} byte limit")
    detected: Detected = TEXT if is_text else detect(data, filename)
    limits = settings.plan(who.plan).limits
    undo: list[Undo] = []
    if not await usage.consume(db, who.user_id, "uploads", limits.uploads_per_day):
        raise QuotaExceeded(f"your plan allows {limits.uploads_per_day} uploads per day", code="quota_exceeded")
    undo.append(lambda: usage.refund(db, who.user_id, "uploads"))
    source_id = new_id()
    try:
        if not await storage.reserve(db, who.user_id, source_id, len(data), limits.storage_bytes):
            raise StorageLimit(f"your plan's storage ({limits.storage_bytes} bytes) is full; delete sources or upgrade")
        undo.append(lambda: storage.release(db, who.user_id, source_id))
        name = f"{source_id}.{detected.extension}"
        await asyncio.to_thread(_write_file, uploads_dir(settings), name, data)
        undo.append(lambda: asyncio.to_thread(_remove_file, uploads_dir(settings) / name))
        now = utcnow()
        doc = {
            "_id": source_id,
            "user_id": who.user_id,
            "notebook_id": notebook_id,
            "title": title or safe_title(filename),
            "kind": detected.kind,
            "content_type": detected.content_type,
            "status": "processing",
            "chunks": 0,
            "error": None,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "file": name,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        await Sources(db).insert(doc)
        undo.append(lambda: Sources(db).delete(source_id))
        if is_text:
            await engine.ingest_text(source_id, who.user_id, notebook_id, data.decode("utf-8"))
        else:
            await engine.ingest(source_id, who.user_id, notebook_id, data, detected.content_type)
    except BaseException:
        await _undo_all(undo)
        raise
    log.info("source_added", source_id=source_id, kind=detected.kind, size=len(data))
    return doc


async def list_for(db: Database, user_id: str, notebook_id: str) -> list[dict[str, Any]]:
    await policy.notebook(db, notebook_id, user_id)
    return await Sources(db).live_in(notebook_id, user_id)


async def get(db: Database, user_id: str, notebook_id: str, source_id: str) -> dict[str, Any]:
    return await policy.source(db, notebook_id, source_id, user_id)


async def remove(db: Database, settings: Settings, engine: SourceEngine, user_id: str, notebook_id: str,
                 source_id: str) -> None:
    """Delete a source: its chunks and vectors (engine), its file, its document, its bytes."""
    doc = await policy.source(db, notebook_id, source_id, user_id)
    await purge(db, settings, engine, doc)


async def purge(db: Database, settings: Settings, engine: SourceEngine, doc: dict[str, Any]) -> None:
    """Remove every trace of a source; safe to repeat (each step is idempotent)."""
    await engine.delete_source(doc["_id"], doc["user_id"])
    await asyncio.to_thread(_remove_file, file_path(settings, doc))
    await Sources(db).delete(doc["_id"])
    await storage.release(db, doc["user_id"], doc["_id"])


async def reingest(db: Database, settings: Settings, engine: SourceEngine, doc: dict[str, Any]) -> None:
    """Index a stored source again (after its notebook left the recycle bin)."""
    await Sources(db).set_status(doc["_id"], "processing", at=utcnow(), chunks=0, error=None)
    try:
        data = await asyncio.to_thread(file_path(settings, doc).read_bytes)
        await engine.ingest(doc["_id"], doc["user_id"], doc["notebook_id"], data, doc["content_type"])
    except Exception as exc:
        log.warning("reingest_failed", source_id=doc["_id"], error=str(exc))
        await Sources(db).set_status(doc["_id"], "failed", error="could not be indexed again; upload it anew")
