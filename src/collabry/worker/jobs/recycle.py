"""The recycle bin's end: boards and notebooks deleted more than ``recycle_days`` ago are removed
for good, with their content, files, chunks and vectors, by the domain's ``recycle.purge_expired``
(idempotent and ordered parts-first, so a crash half-way is finished by the retry)."""

from __future__ import annotations

from ...db.client import utcnow
from ...domain import recycle
from ..job import JobContext


async def purge_recycle_bin(ctx: JobContext) -> None:
    counts = await recycle.purge_expired(ctx.db, ctx.settings, ctx.engine, now=utcnow())  # wall clock: see cleanup
    for kind, count in counts.items():
        ctx.done(kind, count)
