"""Billing: checkouts, subscriptions, invoices and payment events.

- ``checkouts`` ``{_id, user_id, plan_id, base_amount, discount_percent, amount, currency,
  coupon_code, provider, provider_ref, instructions, status: pending|paid|failed, key, renewal_of,
  period_start, period_end, paid_at, event_id, created_at, deleted_at}``; ``key`` is unique (the
  worker's renewal idempotency key).
- ``subscriptions`` ``{_id: userId, user_id, plan, status: active|past_due|cancelled|expired,
  current_period_start, current_period_end, cancel_at_period_end, checkout_id, provider,
  previous_plan, created_at, updated_at}``
- ``invoices`` ``{_id: checkoutId, user_id, checkout_id, plan_id, amount, currency, period_start,
  period_end, status: open|paid, created_at, paid_at}``
- ``payment_events`` ``{_id: eventId, type, checkout_id, status: processing|done, outcome,
  lease_until, received_at, done_at}``: inserting it claims the event (unique ``_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from .client import Database
from .queries import Filter, query
from .reads import all_of

CHECKOUTS = "checkouts"
SUBSCRIPTIONS = "subscriptions"
INVOICES = "invoices"
EVENTS = "payment_events"
INVOICES_LISTED = 200


@query(CHECKOUTS, example=("c1",))
def checkout(checkout_id: str) -> Filter:
    return {"_id": checkout_id}


@query(CHECKOUTS, example=("c1", "u1"))
def users_checkout(checkout_id: str, user_id: str) -> Filter:
    return {"_id": checkout_id, "user_id": user_id, "deleted_at": None}


@query(CHECKOUTS, example=("renewal:u1:2026-12-04T00:00:00Z",))
def checkout_by_key(key: str) -> Filter:
    return {"key": key}


@query(SUBSCRIPTIONS, example=("u1",))
def subscription(user_id: str) -> Filter:
    return {"_id": user_id}


@query(SUBSCRIPTIONS, example=("u1", "active", datetime(2026, 12, 4)))
def subscription_as_read(user_id: str, status: str, period_end: datetime) -> Filter:
    """The subscription unless it changed since it was read (status or period)."""
    return {"_id": user_id, "status": status, "current_period_end": period_end}


@query(SUBSCRIPTIONS, example=(datetime(2026, 12, 4),), sort=(("current_period_end", 1), ("_id", 1)))
def renewals_due(until: datetime) -> Filter:
    return {"status": "active", "cancel_at_period_end": {"$ne": True}, "current_period_end": {"$lte": until}}


@query(SUBSCRIPTIONS, example=(datetime(2026, 12, 4),), sort=(("current_period_end", 1), ("_id", 1)))
def cancellations_due(until: datetime) -> Filter:
    return {"status": {"$in": ["active", "past_due"]}, "cancel_at_period_end": True,
            "current_period_end": {"$lte": until}}


@query(SUBSCRIPTIONS, example=(datetime(2026, 12, 1),), sort=(("current_period_end", 1), ("_id", 1)))
def expiries_due(unpaid_since: datetime) -> Filter:
    return {"status": "past_due", "cancel_at_period_end": {"$ne": True},
            "current_period_end": {"$lte": unpaid_since}}


@query(INVOICES, example=("c1",))
def invoice(checkout_id: str) -> Filter:
    return {"_id": checkout_id}


@query(INVOICES, example=("u1",), sort=(("created_at", -1),), limit=INVOICES_LISTED)
def users_invoices(user_id: str) -> Filter:
    return {"user_id": user_id}


@query(EVENTS, example=("e1",))
def event(event_id: str) -> Filter:
    return {"_id": event_id}


class Checkouts:
    def __init__(self, db: Database) -> None:
        self.coll = db[CHECKOUTS]

    async def insert(self, doc: dict[str, Any]) -> None:
        """DuplicateKeyError when a checkout with the same ``key`` exists."""
        await self.coll.insert_one(doc)

    async def get(self, checkout_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(checkout(checkout_id))

    async def of_user(self, checkout_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(users_checkout(checkout_id, user_id))

    async def by_key(self, key: str) -> dict[str, Any] | None:
        return await self.coll.find_one(checkout_by_key(key))

    async def set(self, checkout_id: str, /, **fields: Any) -> None:
        await self.coll.update_one(checkout(checkout_id), {"$set": fields})


class Subscriptions:
    def __init__(self, db: Database) -> None:
        self.coll = db[SUBSCRIPTIONS]

    async def of_user(self, user_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(subscription(user_id))

    async def create(self, user_id: str, fields: dict[str, Any]) -> bool:
        """False when the user has one already."""
        try:
            await self.coll.insert_one({"_id": user_id, **fields})
        except DuplicateKeyError:
            return False
        return True

    async def set(self, user_id: str, /, **fields: Any) -> None:
        await self.coll.update_one(subscription(user_id), {"$set": fields})

    async def set_if_unchanged(self, sub: dict[str, Any], /, **fields: Any) -> None:
        """Update ``sub`` unless its status or period changed since it was read."""
        where = subscription_as_read(sub["_id"], sub["status"], sub["current_period_end"])
        await self.coll.update_one(where, {"$set": fields})

    async def set_if_active(self, user_id: str, /, **fields: Any) -> None:
        await self.coll.update_one({**subscription(user_id), "status": "active"}, {"$set": fields})

    async def _due(self, where: Filter, sort: list[tuple[str, int]] | None) -> list[dict[str, Any]]:
        return await self.coll.find(where, sort=sort).to_list(None)

    async def renewals_due(self, until: datetime) -> list[dict[str, Any]]:
        return await self._due(renewals_due(until), renewals_due.sort_list)

    async def cancellations_due(self, until: datetime) -> list[dict[str, Any]]:
        return await self._due(cancellations_due(until), cancellations_due.sort_list)

    async def expiries_due(self, unpaid_since: datetime) -> list[dict[str, Any]]:
        return await self._due(expiries_due(unpaid_since), expiries_due.sort_list)


class Invoices:
    def __init__(self, db: Database) -> None:
        self.coll = db[INVOICES]

    async def record_paid(self, doc: dict[str, Any], at: datetime) -> None:
        """Store the paid invoice ``doc``, or mark the existing one paid (a retried payment)."""
        try:
            await self.coll.insert_one(doc)
        except DuplicateKeyError:
            await self.coll.update_one(
                {**invoice(doc["_id"]), "status": {"$ne": "paid"}}, {"$set": {"status": "paid", "paid_at": at}}
            )

    async def of_user(self, user_id: str) -> list[dict[str, Any]]:
        where = users_invoices(user_id)
        return await all_of(self.coll, where, sort=users_invoices.sort_list, at_most=INVOICES_LISTED)


class PaymentEvents:
    def __init__(self, db: Database) -> None:
        self.coll = db[EVENTS]

    async def claim(self, doc: dict[str, Any]) -> bool:
        """Insert the processing claim; False when the event is already claimed or done."""
        try:
            await self.coll.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, event_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one(event(event_id))

    async def drop_stale_claim(self, event_id: str, lease_until: datetime) -> bool:
        """Remove a dead delivery's claim whose lease was ``lease_until``; True for the one caller
        that removed it (the others see a deleted count of 0)."""
        result = await self.coll.delete_one({**event(event_id), "status": "processing", "lease_until": lease_until})
        return result.deleted_count == 1

    async def release(self, event_id: str) -> None:
        await self.coll.delete_one({**event(event_id), "status": "processing"})

    async def finish(self, event_id: str, outcome: str, at: datetime) -> None:
        await self.coll.update_one(event(event_id), {"$set": {"status": "done", "outcome": outcome, "done_at": at}})
