"""Delete upload files that no source refers to (a crash between writing a file and recording it,
or a source purged on another host).

Uploads live in this host's ``$STATE_DIR/uploads``, so this job is host-scoped: each host's worker
claims its own slot (``uploads@<host>:<slot>``) and sweeps its own directory. A file younger than
the grace period is never touched, so an upload in progress is safe; ages are read from the file
system's clock, not the worker's.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

from ...db.sources import Sources
from ..job import CatchUp, Job, JobContext

GRACE = timedelta(hours=6)
BATCH = 500


def _old_files(root: Path, older_than: float) -> list[Path]:
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():  # uploads are flat: ``<sourceId>.<ext>`` (domain.sources)
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < older_than:
                found.append(path)
        except FileNotFoundError:
            continue  # deleted while we looked
    return found


async def sweep_orphan_uploads(ctx: JobContext) -> None:
    root = ctx.settings.state_dir / "uploads"
    files = await asyncio.to_thread(_old_files, root, time.time() - GRACE.total_seconds())
    sources = Sources(ctx.db)
    for start in range(0, len(files), BATCH):
        batch = {path.name: path for path in files[start:start + BATCH]}
        referenced = await sources.referenced_files(list(batch))
        for name, path in batch.items():
            if name not in referenced:
                await asyncio.to_thread(path.unlink, missing_ok=True)
                ctx.log.info("orphan_upload_deleted", file=name)
                ctx.done("files")


JOB = Job(
    name="uploads",
    body=sweep_orphan_uploads,
    schedule="47 3 * * *",
    catch_up=CatchUp.LATEST,
    lease=timedelta(minutes=10),
    timeout=timedelta(minutes=30),
    retry_after=timedelta(minutes=10),
    host_scoped=True,
    description="delete this host's upload files that no source refers to",
)
