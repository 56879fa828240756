"""Coupons: a percent off a plan's price, a validity window, a cap on redemptions, once per user,
optionally only for some plans. Created by an admin (``collabry coupon create``).

Stored by ``db.coupons``: the coupon counts the users holding it (one conditional update against
``max_redemptions``), and each user's redemption is its own document (once per user).
A checkout reserves the user's redemption; a later checkout by the same user reuses it until one is
paid, when it becomes ``redeemed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import Settings
from ..db.client import Database, iso, utcnow
from ..db.coupons import CouponExists, Coupons
from ..errors import Conflict, Invalid
from . import policy
from .policy import Actor

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")


def normalise(code: str) -> str:
    return code.strip().upper()


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": doc["_id"],
        "percent": doc["percent"],
        "validFrom": iso(doc.get("valid_from")),
        "validUntil": iso(doc.get("valid_until")),
        "maxRedemptions": doc.get("max_redemptions"),
        "plans": list(doc.get("plans") or []),
    }


def redemptions(doc: dict[str, Any]) -> int:
    """How many users hold the coupon (reserved or redeemed)."""
    return int(doc.get("redemptions", 0))


async def create(
    db: Database,
    settings: Settings,
    who: Actor,
    code: str,
    percent: int,
    *,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    max_redemptions: int | None = None,
    plans: list[str] | None = None,
) -> dict[str, Any]:
    policy.require_admin(who)
    code = normalise(code)
    if not CODE_PATTERN.match(code):
        raise Invalid("a code is 3-32 letters, digits, '-' or '_'", code="invalid_coupon")
    if not 1 <= percent <= 100:
        raise Invalid("percent must be between 1 and 100", code="invalid_coupon")
    if valid_from and valid_until and valid_until <= valid_from:
        raise Invalid("the validity window ends before it starts", code="invalid_coupon")
    if max_redemptions is not None and max_redemptions < 1:
        raise Invalid("max redemptions must be at least 1", code="invalid_coupon")
    known = {plan.id for plan in settings.plans}
    unknown = sorted(set(plans or ()) - known)
    if unknown:
        raise Invalid(f"unknown plans: {', '.join(unknown)}", code="invalid_coupon")
    doc = {"_id": code, "percent": percent, "valid_from": valid_from, "valid_until": valid_until,
           "max_redemptions": max_redemptions, "plans": sorted(set(plans or ())), "created_at": utcnow(),
           "created_by": who.user_id}
    try:
        return await Coupons(db).create(doc)
    except CouponExists:
        raise Conflict(f"coupon {code} exists", code="coupon_exists") from None


@dataclass(frozen=True, slots=True)
class Verdict:
    coupon: dict[str, Any] | None
    reason: str | None

    @property
    def valid(self) -> bool:
        return self.reason is None


async def check(db: Database, user_id: str, code: str, plan_id: str, *, now: datetime | None = None) -> Verdict:
    """Whether ``user_id`` may use ``code`` for ``plan_id`` now, and if not, why."""
    code = normalise(code)
    if not CODE_PATTERN.match(code):
        return Verdict(None, "not_found")
    store = Coupons(db)
    coupon = await store.get(code)
    if coupon is None:
        return Verdict(None, "not_found")
    now = now or utcnow()
    if coupon.get("valid_from") and now < coupon["valid_from"]:
        return Verdict(coupon, "not_yet_valid")
    if coupon.get("valid_until") and now >= coupon["valid_until"]:
        return Verdict(coupon, "expired")
    if coupon.get("plans") and plan_id not in coupon["plans"]:
        return Verdict(coupon, "plan_not_eligible")
    mine = await store.redemption_of(code, user_id)
    if mine is not None:
        return Verdict(coupon, "already_used" if mine.get("status") == "redeemed" else None)
    limit = coupon.get("max_redemptions")
    if limit is not None and redemptions(coupon) >= limit:
        return Verdict(coupon, "exhausted")
    return Verdict(coupon, None)


async def reserve(db: Database, user_id: str, code: str, plan_id: str, checkout_id: str) -> dict[str, Any]:
    """Hold the user's redemption of ``code`` for ``checkout_id``; the coupon, or ``Invalid``."""
    verdict = await check(db, user_id, code, plan_id)
    if verdict.reason is not None or verdict.coupon is None:
        raise Invalid(f"the coupon cannot be used: {verdict.reason}", code="invalid_coupon",
                      details={"reason": verdict.reason})
    coupon = verdict.coupon
    code = coupon["_id"]
    store = Coupons(db)
    if not await store.reserve_for(code, user_id, checkout_id):
        # The user already holds it (an earlier unpaid checkout): move it to this checkout.
        if not await store.move_reservation(code, user_id, checkout_id):
            raise Invalid("the coupon cannot be used: already_used", code="invalid_coupon",
                          details={"reason": "already_used"})
        return coupon
    if not await store.count_redemption(code, coupon.get("max_redemptions")):
        await store.drop_reservation(code, user_id)
        raise Invalid("the coupon cannot be used: exhausted", code="invalid_coupon", details={"reason": "exhausted"})
    return coupon


async def redeem(db: Database, code: str, user_id: str, checkout_id: str) -> None:
    """The checkout was paid: the reservation becomes a redemption (idempotent)."""
    await Coupons(db).redeem(normalise(code), user_id, checkout_id)


async def list_all(db: Database) -> list[dict[str, Any]]:
    return await Coupons(db).all()
