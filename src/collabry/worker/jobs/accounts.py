"""Account erasures that did not finish within their request (a large account, an engine that
could not be reached, a gateway that stopped): ``accounts.finish_pending`` runs each again. The
erasure is idempotent, so a run that overlaps a request's own erasure does no harm."""

from __future__ import annotations

from datetime import timedelta

from ...domain import accounts
from ..job import CatchUp, Job, JobContext


async def finish_account_erasures(ctx: JobContext) -> None:
    finished, pending = await accounts.finish_pending(ctx.db, ctx.settings, ctx.engine)
    ctx.done("erased", finished)
    if pending:
        raise RuntimeError(f"{pending} account erasure(s) still incomplete; retried on the next slot")


JOB = Job(
    name="account_erasure",
    body=finish_account_erasures,
    schedule="*/5 * * * *",
    catch_up=CatchUp.LATEST,
    timeout=timedelta(minutes=30),
    description="finish account erasures their request left to do",
)
