"""Coupons (``coupons``) and each user's use of one (``coupon_redemptions``).

- ``coupons`` ``{_id: CODE, percent, valid_from, valid_until, max_redemptions, plans, redemptions,
  created_at, created_by}``; ``redemptions`` counts the users holding the coupon (reserved or
  redeemed). Taking one is one conditional update against ``max_redemptions``.
- ``coupon_redemptions`` ``{_id: "<CODE>:<userId>", code, user_id, checkout_id, status:
  reserved|redeemed, created_at, redeemed_at}``: the unique ``_id`` is the once-per-user rule.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from .client import Database, utcnow
from .queries import Filter, query

COUPONS = "coupons"
REDEMPTIONS = "coupon_redemptions"


class CouponExists(Exception):
    pass


@query(COUPONS, example=("SPRING",))
def coupon(code: str) -> Filter:
    return {"_id": code}


@query(COUPONS, example=("SPRING", 3))
def coupon_with_room(code: str, limit: int) -> Filter:
    return {"_id": code, "redemptions": {"$lt": limit}}


@query(COUPONS, example=(), sort=(("created_at", -1),), full_scan="the admin's list of every coupon")
def all_coupons() -> Filter:
    return {}


@query(REDEMPTIONS, example=("SPRING", "u1"))
def redemption(code: str, user_id: str) -> Filter:
    return {"_id": f"{code}:{user_id}"}


@query(REDEMPTIONS, example=("SPRING", "u1"))
def reserved_redemption(code: str, user_id: str) -> Filter:
    return {**redemption(code, user_id), "status": "reserved"}


class Coupons:
    def __init__(self, db: Database) -> None:
        self.coupons = db[COUPONS]
        self.redemptions = db[REDEMPTIONS]

    async def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {**doc, "redemptions": 0}
        try:
            await self.coupons.insert_one(doc)
        except DuplicateKeyError:
            raise CouponExists(doc["_id"]) from None
        return doc

    async def get(self, code: str) -> dict[str, Any] | None:
        return await self.coupons.find_one(coupon(code))

    async def all(self) -> list[dict[str, Any]]:
        return await self.coupons.find(all_coupons(), sort=all_coupons.sort_list).to_list(None)

    async def count_redemption(self, code: str, limit: int | None) -> bool:
        """One more user holds the coupon, if fewer than ``limit`` (None: no cap) do."""
        room = coupon(code) if limit is None else coupon_with_room(code, limit)
        return (await self.coupons.update_one(room, {"$inc": {"redemptions": 1}})).modified_count == 1

    async def uncount_redemption(self, code: str) -> None:
        await self.coupons.update_one({**coupon(code), "redemptions": {"$gt": 0}}, {"$inc": {"redemptions": -1}})

    async def redemption_of(self, code: str, user_id: str) -> dict[str, Any] | None:
        return await self.redemptions.find_one(redemption(code, user_id))

    async def reserve_for(self, code: str, user_id: str, checkout_id: str) -> bool:
        """Record the user's reservation; False when the user already holds one."""
        try:
            await self.redemptions.insert_one(
                {**redemption(code, user_id), "code": code, "user_id": user_id, "checkout_id": checkout_id,
                 "status": "reserved", "created_at": utcnow(), "redeemed_at": None}
            )
        except DuplicateKeyError:
            return False
        return True

    async def move_reservation(self, code: str, user_id: str, checkout_id: str) -> bool:
        """Point the user's unpaid reservation at ``checkout_id``; False when it is already redeemed."""
        result = await self.redemptions.update_one(
            reserved_redemption(code, user_id), {"$set": {"checkout_id": checkout_id}}
        )
        return result.matched_count == 1

    async def drop_reservation(self, code: str, user_id: str) -> None:
        await self.redemptions.delete_one(reserved_redemption(code, user_id))

    async def redeem(self, code: str, user_id: str, checkout_id: str) -> None:
        await self.redemptions.update_one(
            redemption(code, user_id),
            {"$set": {"status": "redeemed", "checkout_id": checkout_id, "redeemed_at": utcnow()}},
        )
