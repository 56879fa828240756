"""A user taking their account away: the export they download (GDPR Art. 20) and its erasure
(Art. 17).

**Export** (``write_export``): a zip with ``account.json`` (every document of the user by
collection, secrets and internal paths left out; dates as ISO 8601, binary as base64), each
uploaded file under ``files/<source id>/<name>``, and the content of each board they own as
``boards/<board id>.yjs`` (one Yjs update: ``Y.applyUpdate`` opens it).

**Erasure** (``erase``), in an order that a crash at any point leaves resumable, because the
``account_erasures`` record is written first and removed last:
1. boards they own go to another member (the first editor, else the first viewer) with the user's
   edits no longer attributed to them, or, with nobody else on them, are deleted with their content;
   in boards of others the user's edits lose their name too;
2. their uploaded files are removed;
3. every engine forgets their index (memory and snapshot file);
4. their documents are deleted (the account first, so it cannot sign in any more); invoices stay
   for the operator's books without the user id.
An engine that cannot be reached leaves the record in place; the worker's ``account_erasure`` job
runs ``erase`` again until every step has succeeded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

import structlog

from ..config import Settings
from ..db.accounts import AccountData
from ..db.board_content import BoardContent
from ..db.boards import Boards
from ..db.client import Database, utcnow
from .sources import file_path

log = structlog.get_logger("collabry.accounts")


class AccountEngine(Protocol):
    """What erasure needs from the engine client (``collabry.engine_client``)."""

    async def forget_user(self, user_id: str) -> list[str]: ...


def _heir(members: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Who keeps a board its owner leaves: the earliest editor, else the earliest member."""
    editors = [m for m in members if m.get("role") == "editor"]
    candidates = editors or members
    return candidates[0] if candidates else None


async def erase(db: Database, settings: Settings, engine: AccountEngine, user_id: str) -> bool:
    """Erase the account; True when nothing of it remains, False when a retry is needed."""
    data, at = AccountData(db), utcnow()
    await data.start_erasure(user_id, at)
    for board in await data.owned_boards(user_id):
        heir = _heir(await Boards(db).members_of(board["_id"]))
        if heir is None:
            await BoardContent(db).delete(board["_id"])
            await Boards(db).delete(board["_id"])
        else:
            await data.unsign_board_edits(board["_id"], user_id)
            await data.hand_over_board(board["_id"], user_id, heir["user_id"], at)
    for membership in await data.memberships(user_id):
        await data.unsign_board_edits(membership["board_id"], user_id)
    for source in await data.sources(user_id):
        if source.get("file"):
            await asyncio.to_thread(file_path(settings, source).unlink, missing_ok=True)
    unreached = await engine.forget_user(user_id)
    counts = await data.erase_documents(user_id, at)
    if unreached:
        await data.erasure_failed(user_id, f"engines not reached: {', '.join(unreached)}")
        log.warning("account_erasure_incomplete", user_id=user_id, engines=len(unreached))
        return False
    await data.finish_erasure(user_id)
    log.info("account_erased", user_id=user_id, documents=sum(counts.values()))
    return True


async def finish_pending(db: Database, settings: Settings, engine: AccountEngine) -> tuple[int, int]:
    """Run every unfinished erasure again; (finished, still pending)."""
    finished = pending = 0
    for user_id in await AccountData(db).pending_erasures():
        try:
            done = await erase(db, settings, engine, user_id)
        except Exception as exc:  # one account's failure must not stop the others
            await AccountData(db).erasure_failed(user_id, str(exc)[:500])
            log.error("account_erasure_failed", user_id=user_id, error=str(exc))
            done = False
        finished, pending = (finished + 1, pending) if done else (finished, pending + 1)
    return finished, pending


# -- export ---------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)  # ObjectId and other BSON scalars


def _file_name(source: dict[str, Any]) -> str:
    """The stored file under a readable name: its title without path separators."""
    title = str(source.get("title") or "file").replace("/", "_").replace("\\", "_").strip(". ") or "file"
    return title[:120]


async def write_export(db: Database, settings: Settings, user_id: str, out: IO[bytes]) -> None:
    """Write the user's export zip to ``out`` (a seekable binary file)."""
    data = AccountData(db)
    documents = await data.export(user_id)
    documents["boards"] = await data.owned_boards(user_id)
    board_states = {b["_id"]: await _board_state(db, b["_id"]) for b in documents["boards"]}
    files: list[tuple[str, Path]] = []
    for source in await data.sources(user_id):
        if source.get("file"):
            files.append((f"files/{source['_id']}/{_file_name(source)}", file_path(settings, source)))
    manifest = {"format": "collabry-account-export", "version": 1, "exported_at": utcnow(), "collections": documents}
    text = json.dumps(manifest, default=_json_default, ensure_ascii=False, indent=1)
    await asyncio.to_thread(_write_zip, out, text, board_states, files)


async def _board_state(db: Database, board_id: str) -> bytes:
    from ..realtime.board_docs import board_state  # the board's Yjs document belongs to real time

    return await board_state(db, board_id)


def _write_zip(out: IO[bytes], text: str, board_states: dict[str, bytes], files: list[tuple[str, Path]]) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("account.json", text)
        for board_id, state in board_states.items():
            archive.writestr(f"boards/{board_id}.yjs", state)
        for name, path in files:
            try:
                archive.write(path, name)
            except FileNotFoundError:
                log.warning("export_file_missing", file=path.name)
