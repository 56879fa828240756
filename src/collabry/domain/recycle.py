"""The end of the recycle bin: what the worker's cleanup calls for items past ``recycle_days``.

Each purge is idempotent and ordered so an interrupted run is completed by the next one: the
parts go first (sources' vectors and files, board content), the item's own document last.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..config import Settings
from ..db.boards import Boards
from ..db.client import Database, utcnow
from ..db.notebooks import Notebooks
from ..db.sources import Sources
from . import sources
from .sources import SourceEngine


async def purge_board(db: Database, board: dict[str, Any]) -> None:
    from ..realtime.board_docs import delete_board_content  # the board's Yjs document belongs to real time

    await delete_board_content(db, board["_id"])
    await Boards(db).delete(board["_id"])


async def purge_notebook(db: Database, settings: Settings, engine: SourceEngine, notebook: dict[str, Any]) -> None:
    for source in await Sources(db).all_in(notebook["_id"], notebook["user_id"]):
        await sources.purge(db, settings, engine, source)
    await Notebooks(db).delete(notebook["_id"])


async def purge_expired(
    db: Database, settings: Settings, engine: SourceEngine, *, now: datetime | None = None
) -> dict[str, int]:
    """Purge boards and notebooks deleted more than ``recycle_days`` ago; counts per kind."""
    cutoff = (now or utcnow()) - timedelta(days=settings.recycle_days)
    counts = {"boards": 0, "notebooks": 0}
    for board in await Boards(db).binned_before(cutoff):
        await purge_board(db, board)
        counts["boards"] += 1
    for notebook in await Notebooks(db).binned_before(cutoff):
        await purge_notebook(db, settings, engine, notebook)
        counts["notebooks"] += 1
    return counts
