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

from ...db.client import Database, iso, utcnow
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
    boards = await db["boards"].find(
        {"owner_id": user_id, "deleted_at": None, "archived_at": None}, {"_id": 1}
    ).sort([("updated_at", -1), ("_id", -1)]).to_list(None)
    extra = [board["_id"] for board in boards[limit:]]
    if not extra:
        return 0
    result = await db["boards"].update_many(
        {"_id": {"$in": extra}, "archived_at": None}, {"$set": {"archived_at": now, "updated_at": now}}
    )
    return int(result.modified_count)


async def renew(ctx: JobContext, sub: dict[str, Any]) -> None:
    user = await ctx.db["users"].find_one({"_id": sub["user_id"]}, {"plan": 1, "name": 1, "email": 1}) or {}
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
        await ctx.db["subscriptions"].update_one(
            {"_id": sub["_id"], "status": "active", "current_period_end": sub["current_period_end"]},
            {"$set": {"status": "past_due", "updated_at": utcnow()}},
        )
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
    await ctx.db["subscriptions"].update_one(
        {"_id": sub["_id"], "status": sub["status"], "current_period_end": sub["current_period_end"]},
        {"$set": {"status": status, "plan": FREE, "previous_plan": sub["plan"], "updated_at": utcnow()}},
    )
    ctx.log.info("subscription_downgraded", user_id=sub["user_id"], status=status, boards_archived=archived)
    ctx.done("cancellations" if status == "cancelled" else "downgrades")
    ctx.done("boards_archived", archived)


async def run_lifecycle(ctx: JobContext) -> None:
    subs = ctx.db["subscriptions"]
    slot = ctx.slot
    failures: list[str] = []

    async def each(query: dict[str, Any], step: Any, **kw: Any) -> None:
        for sub in await subs.find(query).sort([("current_period_end", 1), ("_id", 1)]).to_list(None):
            try:
                await step(ctx, sub, **kw)
            except Exception as exc:  # one bad subscription must not hold up the others
                ctx.log.error("subscription_step_failed", user_id=sub["_id"], step=step.__name__,
                              error=f"{type(exc).__name__}: {exc}", exc_info=True)
                failures.append(sub["_id"])

    ended = {"$lte": slot}
    await each({"status": "active", "cancel_at_period_end": {"$ne": True}, "current_period_end": ended}, renew)
    await each({"status": {"$in": ["active", "past_due"]}, "cancel_at_period_end": True,
                "current_period_end": ended}, downgrade, status="cancelled")
    await each({"status": "past_due", "cancel_at_period_end": {"$ne": True},
                "current_period_end": {"$lte": slot - GRACE}}, downgrade, status="expired")
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
