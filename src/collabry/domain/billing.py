"""Plans, checkouts, subscriptions and payment events.

The price of a checkout is computed here from the plan (config) and the coupon; the client only
names a plan. A payment is applied when the provider's signed ``payment.succeeded`` event arrives,
and the plan comes from our checkout record, never from the event.

Event processing is idempotent by ``eventId`` and retry-safe:
1. the delivery claims the event by inserting ``payment_events {_id: eventId, status: processing,
   lease_until}`` (unique): a concurrent duplicate gets 409 ``event_in_progress`` and retries;
2. every effect is idempotent on its own (the period is fixed on the checkout the first time, the
   invoice's ``_id`` is the checkout id, the subscription and plan are set to absolute values, the
   notification has a dedupe key);
3. the event is marked ``done`` only after all effects are stored. A delivery that fails releases
   its claim (answer 503, so the provider retries); one that dies leaves a claim whose lease
   expires, after which a retry takes over. Either way the retry finishes the work.

Collections (stored by ``db.billing``):
- ``checkouts`` ``{_id, user_id, plan_id, base_amount, discount_percent, amount, currency, coupon_code,
  provider, provider_ref, instructions, status: pending|paid|failed, key, renewal_of, period_start,
  period_end, paid_at, event_id, created_at}`` (``key`` unique: the worker's renewal idempotency key)
- ``subscriptions`` ``{_id: userId, user_id, plan, status: active|past_due|cancelled|expired,
  current_period_start, current_period_end, cancel_at_period_end, checkout_id, provider, created_at,
  updated_at}``
- ``invoices`` ``{_id: checkoutId, user_id, checkout_id, plan_id, amount, currency, period_start,
  period_end, status: open|paid, created_at, paid_at}``
- ``payment_events`` ``{_id: eventId, type, checkout_id, status: processing|done, outcome,
  lease_until, received_at, done_at}``
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from pymongo.errors import DuplicateKeyError

from ..config import Plan, Settings
from ..db.billing import Checkouts, Invoices, PaymentEvents, Subscriptions
from ..db.boards import Boards
from ..db.client import Database, iso, new_id, utcnow
from ..db.users import UserRepository
from ..errors import Conflict, Invalid
from . import coupons, policy
from .notifications import UserEmitter, notify
from .payments import CheckoutIntent, PaymentProvider
from .policy import Actor

log = structlog.get_logger("collabry.billing")

EVENT_LEASE = timedelta(seconds=60)
SUBSCRIPTION_STATUSES = ("active", "past_due", "cancelled", "expired")


# -- plans ------------------------------------------------------------------------------------


def public_plan(plan: Plan, currency: str) -> dict[str, Any]:
    limits = plan.limits
    return {
        "id": plan.id,
        "name": plan.name,
        "price": plan.price_cents,
        "currency": currency,
        "limits": {
            "aiPerDay": limits.ai_per_day,
            "uploadsPerDay": limits.uploads_per_day,
            "storageBytes": limits.storage_bytes,
            "boards": limits.boards,
            "notebooks": limits.notebooks,
        },
    }


def paid_plan(settings: Settings, plan_id: str) -> Plan:
    for plan in settings.plans:
        if plan.id == plan_id:
            if plan.price_cents <= 0:
                raise Invalid(f"the {plan.id} plan is free; there is nothing to buy", code="invalid_plan")
            return plan
    raise Invalid(f"unknown plan {plan_id!r}", code="invalid_plan")


def discounted(amount: int, percent: int) -> int:
    """Whole minor units, rounded half up, never negative."""
    return max(0, (amount * (100 - percent) + 50) // 100)


# -- checkouts --------------------------------------------------------------------------------


def public_checkout(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "planId": doc["plan_id"],
        "amount": doc["amount"],
        "currency": doc["currency"],
        "baseAmount": doc["base_amount"],
        "discountPercent": doc.get("discount_percent", 0),
        "couponCode": doc.get("coupon_code"),
        "status": doc["status"],
        "provider": doc["provider"],
        "instructions": doc.get("instructions"),
        "createdAt": iso(doc.get("created_at")),
    }


async def create_checkout(
    db: Database,
    settings: Settings,
    provider: PaymentProvider,
    emitter: UserEmitter | None,
    who: Actor,
    plan_id: str,
    coupon_code: str | None = None,
    *,
    key: str | None = None,
    renewal_of: str | None = None,
) -> dict[str, Any]:
    """A priced checkout for ``plan_id``. ``key`` makes it idempotent (the worker's renewals pass one)."""
    plan = paid_plan(settings, plan_id)
    checkouts = Checkouts(db)
    if key is not None:
        existing = await checkouts.by_key(key)
        if existing is not None:
            return existing
    checkout_id = new_id()
    percent = 0
    code = None
    if coupon_code:
        coupon = await coupons.reserve(db, who.user_id, coupon_code, plan.id, checkout_id)
        percent, code = int(coupon["percent"]), str(coupon["_id"])
    amount = discounted(plan.price_cents, percent)
    doc: dict[str, Any] = {
        "_id": checkout_id,
        "user_id": who.user_id,
        "plan_id": plan.id,
        "base_amount": plan.price_cents,
        "discount_percent": percent,
        "amount": amount,
        "currency": settings.billing_currency,
        "coupon_code": code,
        "provider": provider.name,
        "provider_ref": None,
        "instructions": None,
        "status": "pending",
        "key": key or f"checkout:{checkout_id}",
        "renewal_of": renewal_of,
        "period_start": None,
        "period_end": None,
        "paid_at": None,
        "event_id": None,
        "created_at": utcnow(),
        "deleted_at": None,
    }
    try:
        await checkouts.insert(doc)
    except DuplicateKeyError:
        existing = await checkouts.by_key(doc["key"])
        if existing is not None:
            return existing
        raise
    started = await provider.start_checkout(
        CheckoutIntent(checkout_id, who.user_id, plan.id, amount, doc["currency"], f"Collabry {plan.name}")
    )
    doc.update(provider_ref=started.reference, instructions=started.instructions)
    await checkouts.set(checkout_id, provider_ref=started.reference, instructions=started.instructions)
    if amount == 0:  # fully discounted: nothing to pay, the plan starts now
        await apply_payment(db, settings, emitter, doc, event_id=f"free:{checkout_id}")
        doc["status"] = "paid"
    return doc


# -- subscriptions ----------------------------------------------------------------------------


def public_subscription(doc: dict[str, Any] | None) -> dict[str, Any]:
    if doc is None:
        return {"plan": "free", "status": "active", "currentPeriodEnd": None, "cancelAtPeriodEnd": False}
    return {
        "plan": doc["plan"],
        "status": doc["status"],
        "currentPeriodEnd": iso(doc.get("current_period_end")),
        "cancelAtPeriodEnd": bool(doc.get("cancel_at_period_end")),
    }


async def subscription_of(db: Database, user_id: str) -> dict[str, Any] | None:
    return await Subscriptions(db).of_user(user_id)


async def cancel(db: Database, provider: PaymentProvider, who: Actor) -> dict[str, Any]:
    """Stop renewing: the plan stays until the end of the paid period, then the worker ends it."""
    sub = await subscription_of(db, who.user_id)
    if sub is None or sub["status"] not in ("active", "past_due"):
        raise Conflict("there is no paid subscription to cancel", code="no_subscription")
    if not sub.get("cancel_at_period_end"):
        await provider.cancel_renewal(who.user_id, sub["_id"])
        await Subscriptions(db).set(who.user_id, cancel_at_period_end=True, updated_at=utcnow())
        sub["cancel_at_period_end"] = True
    return sub


# -- payment events ---------------------------------------------------------------------------


async def claim_event(db: Database, event_id: str, event_type: str, checkout_id: str | None) -> bool:
    """Take the exclusive right to process ``event_id``; False if it was already done."""
    events = PaymentEvents(db)
    for _ in range(2):
        now = utcnow()
        if await events.claim({"_id": event_id, "type": event_type, "checkout_id": checkout_id,
                               "status": "processing", "outcome": None, "lease_until": now + EVENT_LEASE,
                               "received_at": now, "done_at": None}):
            return True
        existing = await events.get(event_id)
        if existing is None:
            continue  # released between our insert and read: try again
        if existing["status"] == "done":
            return False
        if existing["lease_until"] > now:
            raise Conflict("this event is being processed; retry later", code="event_in_progress",
                           headers={"Retry-After": "5"})
        # An earlier delivery died half-way. Removing its claim is conditional on the lease read
        # here, and reported to one caller only, so exactly one retry takes the stale claim over.
        if not await events.drop_stale_claim(event_id, existing["lease_until"]):
            raise Conflict("this event is being processed; retry later", code="event_in_progress",
                           headers={"Retry-After": "5"})
    raise Conflict("this event is being processed; retry later", code="event_in_progress",
                   headers={"Retry-After": "5"})


async def finish_event(db: Database, event_id: str, outcome: str) -> None:
    await PaymentEvents(db).finish(event_id, outcome, utcnow())


async def release_event(db: Database, event_id: str) -> None:
    await PaymentEvents(db).release(event_id)


async def process_event(db: Database, settings: Settings, emitter: UserEmitter | None, event: dict[str, Any]) -> str:
    """Apply a verified provider event once: ``processed``, ``duplicate`` or ``ignored``."""
    event_id = str(event["eventId"])
    event_type = str(event.get("type") or "")
    checkout_id = event.get("checkoutId")
    if not await claim_event(db, event_id, event_type, checkout_id):
        return "duplicate"
    try:
        outcome = await _apply_event(db, settings, emitter, event_id, event_type, checkout_id, event)
    except BaseException:
        try:
            await release_event(db, event_id)
        except Exception as exc:  # the lease expires instead
            log.error("payment_event_release_failed", event_id=event_id, error=str(exc))
        raise
    await finish_event(db, event_id, outcome)
    log.info("payment_event", event_id=event_id, type=event_type, outcome=outcome)
    return "processed" if outcome == "applied" else "ignored"


async def _apply_event(db: Database, settings: Settings, emitter: UserEmitter | None, event_id: str, event_type: str,
                       checkout_id: Any, event: dict[str, Any]) -> str:
    if event_type not in ("payment.succeeded", "payment.failed") or not isinstance(checkout_id, str):
        return "unsupported"
    checkout = await Checkouts(db).get(checkout_id)
    if checkout is None:
        return "unknown_checkout"
    if event.get("amount") is not None and event["amount"] != checkout["amount"]:
        log.warning("payment_amount_mismatch", checkout_id=checkout_id, sent=event["amount"], due=checkout["amount"])
        return "amount_mismatch"
    if event.get("currency") is not None and str(event["currency"]).lower() != checkout["currency"]:
        return "amount_mismatch"
    if event_type == "payment.failed":
        await apply_failure(db, emitter, checkout)
        return "applied"
    await apply_payment(db, settings, emitter, checkout, event_id=event_id)
    return "applied"


async def fix_period(db: Database, settings: Settings, checkout: dict[str, Any]) -> tuple[datetime, datetime]:
    """The paid period, decided once and kept on the checkout so every retry uses the same one."""
    if checkout.get("period_start") and checkout.get("period_end"):
        return checkout["period_start"], checkout["period_end"]
    now = utcnow()
    start = now
    sub = await subscription_of(db, checkout["user_id"])
    if (sub is not None and sub["plan"] == checkout["plan_id"] and sub["status"] == "active"
            and sub.get("current_period_end") and sub["current_period_end"] > now):
        start = sub["current_period_end"]  # paying again for the same plan extends it
    end = start + timedelta(days=settings.billing_period_days)
    await Checkouts(db).set(checkout["_id"], period_start=start, period_end=end)
    checkout.update(period_start=start, period_end=end)
    return start, end


async def record_invoice(db: Database, checkout: dict[str, Any], start: datetime, end: datetime) -> None:
    now = utcnow()
    await Invoices(db).record_paid({
        "_id": checkout["_id"], "user_id": checkout["user_id"], "checkout_id": checkout["_id"],
        "plan_id": checkout["plan_id"], "amount": checkout["amount"], "currency": checkout["currency"],
        "period_start": start, "period_end": end, "status": "paid", "created_at": now, "paid_at": now,
    }, now)


async def activate_subscription(db: Database, checkout: dict[str, Any], start: datetime, end: datetime) -> None:
    user_id = checkout["user_id"]
    current = await subscription_of(db, user_id)
    if current is not None and current.get("current_period_end") and current["current_period_end"] > end:
        return  # a later period is already in place (this event is an old one arriving late)
    fields = {"user_id": user_id, "plan": checkout["plan_id"], "status": "active", "current_period_start": start,
              "current_period_end": end, "cancel_at_period_end": False, "checkout_id": checkout["_id"],
              "provider": checkout["provider"], "updated_at": utcnow()}
    if current is None and await Subscriptions(db).create(user_id, {**fields, "created_at": utcnow()}):
        return
    await Subscriptions(db).set(user_id, **fields)


async def set_user_plan(db: Database, user_id: str, plan_id: str) -> None:
    await UserRepository(db).set_plan(user_id, plan_id)


async def unarchive_boards(db: Database, user_id: str) -> None:
    """A paid plan again: boards archived by a downgrade become writable (they kept their slots)."""
    await Boards(db).unarchive_all(user_id, utcnow())


async def apply_payment(db: Database, settings: Settings, emitter: UserEmitter | None, checkout: dict[str, Any],
                        *, event_id: str) -> None:
    """Every effect of a paid checkout; each step is idempotent, so a retry completes a partial run."""
    start, end = await fix_period(db, settings, checkout)
    await record_invoice(db, checkout, start, end)
    await activate_subscription(db, checkout, start, end)
    await set_user_plan(db, checkout["user_id"], checkout["plan_id"])
    await unarchive_boards(db, checkout["user_id"])
    if checkout.get("coupon_code"):
        await coupons.redeem(db, checkout["coupon_code"], checkout["user_id"], checkout["_id"])
    await Checkouts(db).set(checkout["_id"], status="paid", paid_at=utcnow(), event_id=event_id)
    plan = settings.plan(checkout["plan_id"])
    await notify(db, emitter, checkout["user_id"], "payment_succeeded", f"{plan.name} plan active",
                 f"Your {plan.name} plan is active until {end:%Y-%m-%d}.", dedupe_key=f"payment:{checkout['_id']}")


async def apply_failure(db: Database, emitter: UserEmitter | None, checkout: dict[str, Any]) -> None:
    if checkout["status"] == "paid":
        return  # a late failure notice for a checkout that was paid after all
    await Checkouts(db).set(checkout["_id"], status="failed")
    if checkout.get("renewal_of"):
        await Subscriptions(db).set_if_active(checkout["user_id"], status="past_due", updated_at=utcnow())
    await notify(db, emitter, checkout["user_id"], "payment_failed", "Payment failed",
                 "Your payment did not go through; your plan stays as it was.",
                 dedupe_key=f"payment_failed:{checkout['_id']}")


def public_invoice(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "planId": doc["plan_id"],
        "amount": doc["amount"],
        "currency": doc["currency"],
        "status": doc["status"],
        "periodStart": iso(doc.get("period_start")),
        "periodEnd": iso(doc.get("period_end")),
        "createdAt": iso(doc.get("created_at")),
    }


async def invoices_of(db: Database, user_id: str) -> list[dict[str, Any]]:
    return await Invoices(db).of_user(user_id)


async def checkout_of(db: Database, who: Actor, checkout_id: str) -> dict[str, Any]:
    return await policy.checkout(db, checkout_id, who.user_id)
