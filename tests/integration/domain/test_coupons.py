"""Coupons: admin creation through the CLI, validation rules, rate limit, caps under concurrency."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta

from collabry.db.client import utcnow
from collabry.domain import coupons, payments
from collabry.domain.policy import SYSTEM, Actor
from collabry.errors import Forbidden

from ..helpers import user_with_token


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collabry.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


async def validate(api, user, code, plan="starter"):
    resp = await api.post("/api/coupons/validate", json={"code": code, "planId": plan}, headers=user["headers"])
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_cli_creates_coupons_that_the_api_accepts(api, env, alice):
    result = await asyncio.to_thread(run_cli, env, "coupon", "create", "--code", "spring25", "--percent", "25",
                                     "--max-redemptions", "100", "--plan", "starter", "--plan", "pro",
                                     "--valid-until", "2099-01-01T00:00:00Z")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["code"] == "SPRING25" and created["percent"] == 25 and created["plans"] == ["pro", "starter"]
    assert await validate(api, alice, "Spring25") == {"valid": True, "discountPercent": 25}
    assert await validate(api, alice, "SPRING25", "free") == {"valid": False, "reason": "plan_not_eligible"}
    # a duplicate code and bad values are refused with a message and a non-zero status
    again = await asyncio.to_thread(run_cli, env, "coupon", "create", "--code", "SPRING25", "--percent", "10")
    assert again.returncode == 1 and "exists" in again.stderr
    bad = await asyncio.to_thread(run_cli, env, "coupon", "create", "--code", "X", "--percent", "150")
    assert bad.returncode == 1
    listed = await asyncio.to_thread(run_cli, env, "coupon", "list")
    assert [json.loads(line)["code"] for line in listed.stdout.splitlines()] == ["SPRING25"]


async def test_creating_a_coupon_needs_the_admin_role(db, settings, alice):
    try:
        await coupons.create(db, settings, Actor(alice["id"]), "NOPE", 10)
    except Forbidden:
        pass
    else:
        raise AssertionError("a plain user created a coupon")
    assert await db["coupons"].count_documents({}) == 0


async def test_validation_reasons(api, db, settings, alice, bob):
    now = utcnow()
    await coupons.create(db, settings, SYSTEM, "LATER", 10, valid_from=now + timedelta(days=1))
    await coupons.create(db, settings, SYSTEM, "OVER", 10, valid_until=now - timedelta(seconds=1))
    await coupons.create(db, settings, SYSTEM, "ONCE", 50, max_redemptions=1)
    assert await validate(api, alice, "NOSUCH") == {"valid": False, "reason": "not_found"}
    assert await validate(api, alice, "../$where") == {"valid": False, "reason": "not_found"}
    assert await validate(api, alice, "LATER") == {"valid": False, "reason": "not_yet_valid"}
    assert await validate(api, alice, "OVER") == {"valid": False, "reason": "expired"}
    # Bob takes the only redemption by paying with it
    resp = await api.post("/api/subscription/checkout", json={"planId": "starter", "couponCode": "ONCE"},
                          headers=bob["headers"])
    co = (await resp.json())["checkout"]
    body = json.dumps({"eventId": "e1", "type": "payment.succeeded", "checkoutId": co["id"]}).encode()
    signed = payments.signed_headers(settings.webhook_secret, body)
    resp = await api.post("/api/webhooks/payments", data=body, headers=signed)
    assert resp.status == 200
    assert await validate(api, alice, "ONCE") == {"valid": False, "reason": "exhausted"}
    assert await validate(api, bob, "ONCE") == {"valid": False, "reason": "already_used"}
    resp = await api.post("/api/subscription/checkout", json={"planId": "starter", "couponCode": "ONCE"},
                          headers=bob["headers"])
    assert resp.status == 400 and (await resp.json())["error"]["details"] == {"reason": "already_used"}


async def test_an_unpaid_checkout_keeps_the_users_single_redemption(api, db, settings, alice):
    await coupons.create(db, settings, SYSTEM, "TWICE", 20, max_redemptions=2)
    for _ in range(3):  # abandoning checkouts does not use up the coupon
        resp = await api.post("/api/subscription/checkout", json={"planId": "pro", "couponCode": "TWICE"},
                              headers=alice["headers"])
        assert resp.status == 201 and (await resp.json())["checkout"]["amount"] == 1520
    assert coupons.redemptions(await db["coupons"].find_one({"_id": "TWICE"})) == 1


async def test_max_redemptions_hold_under_concurrency(api, db, settings):
    await coupons.create(db, settings, SYSTEM, "FIRST3", 30, max_redemptions=3)
    users = [await user_with_token(api, f"u{i}") for i in range(10)]
    results = await asyncio.gather(*[
        api.post("/api/subscription/checkout", json={"planId": "starter", "couponCode": "FIRST3"}, headers=u["headers"])
        for u in users
    ])
    assert sorted(r.status for r in results) == [201] * 3 + [400] * 7
    assert coupons.redemptions(await db["coupons"].find_one({"_id": "FIRST3"})) == 3
    assert await db["coupon_redemptions"].count_documents({"code": "FIRST3"}) == 3


async def test_validation_is_limited_to_twenty_per_hour_per_user(api, alice, bob):
    for i in range(20):
        resp = await api.post("/api/coupons/validate", json={"code": f"GUESS{i}", "planId": "pro"},
                              headers=alice["headers"])
        assert resp.status == 200
        assert int(resp.headers["RateLimit-Limit"]) == 20
    resp = await api.post("/api/coupons/validate", json={"code": "GUESS20", "planId": "pro"}, headers=alice["headers"])
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "rate_limited" and int(resp.headers["Retry-After"]) > 0
    # per user: Bob is unaffected
    assert (await api.post("/api/coupons/validate", json={"code": "X1Y", "planId": "pro"},
                           headers=bob["headers"])).status == 200
