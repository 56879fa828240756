"""Subscription lifecycle at the end of a paid period.

- A subscription that renews (``cancel_at_period_end`` false) gets the next period's checkout,
  created through the payment provider with the key ``renewal:<user>:<period end>``, so it exists
  once however often this runs; the subscription becomes ``past_due`` until it is paid (the webhook
  then makes it ``active`` again, see ``domain.billing``) and the user is told how to pay.
- A subscription still unpaid ``GRACE`` after its period ended is ``expired``: the user drops to
  the free plan and the boards over the free plan's limit are archived (read-only; the most
  recently updated ones stay writable).
- A subscription cancelled at period end is ``cancelled`` when the period ends, with the same
  downgrade.

Every step is idempotent (checkout key, absolute values, notification dedupe keys) and the status
change that takes a subscription out of a step's query is written last, so a slot retried after a
crash completes what was left. The queries are cumulative (everything due by the slot), so only the
latest missed slot needs to run after downtime.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ...db.billing import Subscriptions
from ...db.boards import Boards
from ...db.client import Database, iso, utcnow
from ...db.users import UserRepository
from ...domain import billing
from ...domain.notifications import notify
from ...domain.payments import provider_for
from ...domain.policy import Actor
from ..job import CatchUp, Job, JobContext

GRACE = timedelta(days=3)
FREE = "free"


def renewal_key(sub: dict[str, Any]) -> str:
    return f"renewal:{sub['user_id']}:{iso(sub['current_period_end'])}"


async def archive_boards_over_limit(db: Database, user_id: str, limit: int, now: datetime) -> int:
    """Archive the owner's boards beyond ``limit``, keeping the most recently updated ones."""
    return await Boards(db).archive_beyond(user_id, limit, now)


async def renew(ctx: JobContext, sub: dict[str, Any]) -> None:
    user = await UserRepository(ctx.db).by_id(sub["user_id"]) or {}
    who = Actor(sub["user_id"], plan=user.get("plan") or sub["plan"], name=user.get("name", ""),
                email=user.get("email", ""))
    checkout = await billing.create_checkout(
        ctx.db, ctx.settings, provider_for(ctx.settings), ctx.emitter, who, sub["plan"],
        key=renewal_key(sub), renewal_of=sub["_id"],
    )
    plan = ctx.settings.plan(sub["plan"])
    if checkout["status"] != "paid":
        await notify(
            ctx.db, ctx.emitter, sub["user_id"], "subscription_renewal", f"Renew your {plan.name} plan",
            f"Your {plan.name} plan period ended on {sub['current_period_end']:%Y-%m-%d}. "
            f"{checkout.get('instructions') or ''}".strip(),
            dedupe_key=f"renewal:{checkout['_id']}",
        )
        await Subscriptions(ctx.db).set_if_unchanged(sub, status="past_due", updated_at=utcnow())
    ctx.log.info("subscription_renewal", user_id=sub["user_id"], checkout_id=checkout["_id"])
    ctx.done("renewals")


async def downgrade(ctx: JobContext, sub: dict[str, Any], *, status: str) -> None:
    free = ctx.settings.plan(FREE)
    archived = await archive_boards_over_limit(ctx.db, sub["user_id"], free.limits.boards, utcnow())
    await billing.set_user_plan(ctx.db, sub["user_id"], FREE)
    plan = ctx.settings.plan(sub["plan"])
    why = "was cancelled" if status == "cancelled" else "was not renewed"
    body = f"Your {plan.name} plan {why}; you are on the {free.name} plan now."
    if archived:
        body += f" {archived} board(s) over the {free.name} limit are archived (read-only)."
    await notify(ctx.db, ctx.emitter, sub["user_id"], "plan_downgraded", f"You are on the {free.name} plan", body,
                 dedupe_key=f"downgrade:{sub['user_id']}:{iso(sub['current_period_end'])}")
    await Subscriptions(ctx.db).set_if_unchanged(
        sub, status=status, plan=FREE, previous_plan=sub["plan"], updated_at=utcnow()
    )
    ctx.log.info("subscription_downgraded", user_id=sub["user_id"], status=status, boards_archived=archived)
    ctx.done("cancellations" if status == "cancelled" else "downgrades")
    ctx.done("boards_archived", archived)


async def run_lifecycle(ctx: JobContext) -> None:
    subs = Subscriptions(ctx.db)
    slot = ctx.slot
    failures: list[str] = []

    async def each(due: list[dict[str, Any]], step: Any, **kw: Any) -> None:
        for sub in due:
            try:
                await step(ctx, sub, **kw)
            except Exception as exc:  # one bad subscription must not hold up the others
                ctx.log.error("subscription_step_failed", user_id=sub["_id"], step=step.__name__,
                              error=f"{type(exc).__name__}: {exc}", exc_info=True)
                failures.append(sub["_id"])

    await each(await subs.renewals_due(slot), renew)
    await each(await subs.cancellations_due(slot), downgrade, status="cancelled")
    await each(await subs.expiries_due(slot - GRACE), downgrade, status="expired")
    if failures:
        raise RuntimeError(f"{len(failures)} subscription(s) could not be processed: {', '.join(failures[:5])}")


JOB = Job(
    name="subscriptions",
    body=run_lifecycle,
    schedule="*/5 * * * *",
    catch_up=CatchUp.LATEST,
    lease=timedelta(minutes=5),
    timeout=timedelta(minutes=15),
    retry_after=timedelta(minutes=2),
    description="renewal checkouts at period end; downgrade after the grace period or a cancellation",
)
