"""Plans, checkout pricing, subscriptions and the signed, idempotent, retry-safe payment webhook."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta

import pytest

from collabry.domain import billing, coupons, payments
from collabry.domain.policy import SYSTEM


def _event(checkout_id: str, event_id: str = "evt-1", **extra) -> bytes:
    return json.dumps({"eventId": event_id, "type": "payment.succeeded", "checkoutId": checkout_id, **extra}).encode()


async def deliver(api, settings, body: bytes, *, timestamp: int | None = None, secret: str | None = None):
    headers = payments.signed_headers(secret or settings.webhook_secret, body, timestamp=timestamp)
    return await api.post("/api/webhooks/payments", data=body, headers=headers)


async def checkout(api, user, plan="starter", **extra):
    resp = await api.post("/api/subscription/checkout", json={"planId": plan, **extra}, headers=user["headers"])
    assert resp.status == 201, await resp.text()
    return (await resp.json())["checkout"]


async def test_plans_are_public_and_come_from_config(api):
    resp = await api.get("/api/plans")
    assert resp.status == 200
    plans = (await resp.json())["plans"]
    assert [(p["id"], p["price"]) for p in plans] == [("free", 0), ("starter", 900), ("pro", 1900)]
    assert plans[0]["limits"] == {"aiPerDay": 10, "uploadsPerDay": 4, "storageBytes": 65536, "boards": 3,
                                  "notebooks": 3}


async def test_checkout_is_priced_on_the_server(api, alice):
    assert (await (await api.get("/api/subscription", headers=alice["headers"])).json())["subscription"] == {
        "plan": "free", "status": "active", "currentPeriodEnd": None, "cancelAtPeriodEnd": False}
    co = await checkout(api, alice, "pro")
    assert (co["amount"], co["currency"], co["planId"], co["status"]) == (1900, "usd", "pro", "pending")
    # a client-sent amount is refused, unknown and free plans cannot be bought
    resp = await api.post("/api/subscription/checkout", json={"planId": "pro", "amount": 1}, headers=alice["headers"])
    assert resp.status == 400
    for plan in ("free", "platinum"):
        resp = await api.post("/api/subscription/checkout", json={"planId": plan}, headers=alice["headers"])
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_plan"


async def test_payment_activates_the_plan_from_our_record(api, db, settings, alice):
    co = await checkout(api, alice, "starter")
    # the event may say anything about plans: the plan is the checkout's
    resp = await deliver(api, settings, _event(co["id"], planId="pro"))
    assert resp.status == 200 and (await resp.json()) == {"received": True, "status": "processed"}
    sub = (await (await api.get("/api/subscription", headers=alice["headers"])).json())["subscription"]
    assert sub["plan"] == "starter" and sub["status"] == "active" and sub["cancelAtPeriodEnd"] is False
    end = datetime.fromisoformat(sub["currentPeriodEnd"].replace("Z", "+00:00"))
    assert timedelta(days=29) < end - datetime.now(end.tzinfo) <= timedelta(days=30)
    assert (await (await api.get("/api/auth/me", headers=alice["headers"])).json())["user"]["plan"] == "starter"
    usage = await (await api.get("/api/usage", headers=alice["headers"])).json()
    assert usage["plan"] == "starter" and usage["limits"]["boards"] == 10
    invoices = (await (await api.get("/api/subscription/invoices", headers=alice["headers"])).json())["invoices"]
    assert [(i["id"], i["amount"], i["status"]) for i in invoices] == [(co["id"], 900, "paid")]
    notes = (await (await api.get("/api/notifications", headers=alice["headers"])).json())["notifications"]
    assert [n["type"] for n in notes] == ["payment_succeeded"]


async def test_bad_signature_is_401_and_changes_nothing(api, db, settings, alice):
    co = await checkout(api, alice)
    body = _event(co["id"])
    for headers in (
        payments.signed_headers("not-the-secret", body),
        {payments.TIMESTAMP_HEADER: str(int(time.time())), payments.SIGNATURE_HEADER: "sha256=00"},
        {payments.TIMESTAMP_HEADER: str(int(time.time()))},
        {},
    ):
        resp = await api.post("/api/webhooks/payments", data=body, headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_signature"
    # a valid signature over a different body does not transfer
    signed = payments.signed_headers(settings.webhook_secret, _event(co["id"], "other"))
    assert (await api.post("/api/webhooks/payments", data=body, headers=signed)).status == 401
    assert await db["payment_events"].count_documents({}) == 0
    assert (await db["users"].find_one({"_id": alice["id"]}))["plan"] == "free"


async def test_old_and_future_timestamps_are_rejected(api, db, settings, alice):
    co = await checkout(api, alice)
    for skew in (-settings.webhook_tolerance - 5, settings.webhook_tolerance + 5, -86400):
        resp = await deliver(api, settings, _event(co["id"]), timestamp=int(time.time()) + skew)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "stale_timestamp"
    assert await db["payment_events"].count_documents({}) == 0
    resp = await deliver(api, settings, _event(co["id"]), timestamp=int(time.time()) - 60)
    assert resp.status == 200


async def test_five_deliveries_activate_once(api, db, settings, alice):
    co = await checkout(api, alice)
    body = _event(co["id"], "evt-seq")
    statuses = [(await (await deliver(api, settings, body)).json())["status"] for _ in range(5)]
    assert statuses == ["processed"] + ["duplicate"] * 4
    first_end = (await db["subscriptions"].find_one({"_id": alice["id"]}))["current_period_end"]
    # the same five deliveries at once: one processes, the rest are duplicates or told to retry
    co2 = await checkout(api, alice)
    answers = await asyncio.gather(*[deliver(api, settings, _event(co2["id"], "evt-par")) for _ in range(5)])
    codes = sorted(r.status for r in answers)
    assert codes.count(200) >= 1 and set(codes) <= {200, 409}
    outcomes = [(await r.json()).get("status") for r in answers if r.status == 200]
    assert outcomes.count("processed") == 1
    for late in [r for r in answers if r.status == 409]:
        assert late.headers["Retry-After"]
    # the provider's retries of the refused ones are duplicates
    assert (await (await deliver(api, settings, _event(co2["id"], "evt-par"))).json())["status"] == "duplicate"
    # exactly one period added per paid checkout, one invoice each, one notification each
    sub = await db["subscriptions"].find_one({"_id": alice["id"]})
    assert sub["current_period_end"] == first_end + timedelta(days=30)
    assert await db["invoices"].count_documents({"user_id": alice["id"]}) == 2
    assert await db["notifications"].count_documents({"user_id": alice["id"], "type": "payment_succeeded"}) == 2
    assert await db["payment_events"].count_documents({"status": "done"}) == 2


async def test_a_delivery_that_fails_half_way_is_completed_by_the_retry(api, db, settings, alice, monkeypatch):
    co = await checkout(api, alice, "pro")
    real = billing.set_user_plan
    failures = []

    async def crash_after_invoice_and_subscription(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise ConnectionError("database connection lost")  # stands for the process dying here
        await real(*args, **kwargs)

    monkeypatch.setattr(billing, "set_user_plan", crash_after_invoice_and_subscription)
    body = _event(co["id"], "evt-crash")
    resp = await deliver(api, settings, body)
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "processing_failed"
    # part of the work is stored, the rest is not, and the event is not marked done
    assert await db["invoices"].count_documents({"_id": co["id"]}) == 1
    period = (await db["subscriptions"].find_one({"_id": alice["id"]}))["current_period_end"]
    assert (await db["users"].find_one({"_id": alice["id"]}))["plan"] == "free"
    assert await db["payment_events"].find_one({"_id": "evt-crash"}) is None
    # the provider retries: the work is completed, nothing doubled
    resp = await deliver(api, settings, body)
    assert resp.status == 200 and (await resp.json())["status"] == "processed"
    assert (await db["users"].find_one({"_id": alice["id"]}))["plan"] == "pro"
    assert (await db["subscriptions"].find_one({"_id": alice["id"]}))["current_period_end"] == period
    assert await db["invoices"].count_documents({"user_id": alice["id"]}) == 1
    assert await db["notifications"].count_documents({"user_id": alice["id"], "type": "payment_succeeded"}) == 1
    assert (await db["payment_events"].find_one({"_id": "evt-crash"}))["status"] == "done"
    assert (await (await deliver(api, settings, body)).json())["status"] == "duplicate"


async def test_a_claim_left_by_a_dead_process_is_taken_over_after_its_lease(api, db, settings, alice):
    co = await checkout(api, alice)
    body = _event(co["id"], "evt-dead")
    await billing.claim_event(db, "evt-dead", "payment.succeeded", co["id"])  # the process dies right here
    resp = await deliver(api, settings, body)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "event_in_progress"
    await db["payment_events"].update_one({"_id": "evt-dead"}, {"$set": {"lease_until": datetime(2000, 1, 1)}})
    resp = await deliver(api, settings, body)
    assert resp.status == 200 and (await resp.json())["status"] == "processed"
    assert (await db["users"].find_one({"_id": alice["id"]}))["plan"] == "starter"


async def test_amount_mismatch_and_unknown_events_do_not_activate(api, db, settings, alice):
    co = await checkout(api, alice)
    resp = await deliver(api, settings, _event(co["id"], "evt-cheap", amount=1))
    assert resp.status == 200 and (await resp.json())["status"] == "ignored"
    resp = await deliver(api, settings, _event("no-such-checkout", "evt-unknown"))
    assert (await resp.json())["status"] == "ignored"
    body = json.dumps({"eventId": "evt-x", "type": "customer.updated"}).encode()
    assert (await (await deliver(api, settings, body)).json())["status"] == "ignored"
    assert (await db["users"].find_one({"_id": alice["id"]}))["plan"] == "free"
    resp = await deliver(api, settings, b"{not json")
    assert resp.status == 400


async def test_failed_payment_marks_the_checkout(api, db, settings, alice):
    co = await checkout(api, alice)
    body = json.dumps({"eventId": "evt-f", "type": "payment.failed", "checkoutId": co["id"]}).encode()
    assert (await (await deliver(api, settings, body)).json())["status"] == "processed"
    assert (await db["checkouts"].find_one({"_id": co["id"]}))["status"] == "failed"
    notes = (await (await api.get("/api/notifications", headers=alice["headers"])).json())["notifications"]
    assert [n["type"] for n in notes] == ["payment_failed"]


async def test_cancel_at_period_end(api, db, settings, alice):
    resp = await api.post("/api/subscription/cancel", headers=alice["headers"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "no_subscription"
    co = await checkout(api, alice)
    await deliver(api, settings, _event(co["id"], "evt-c"))
    for _ in range(2):  # idempotent
        resp = await api.post("/api/subscription/cancel", headers=alice["headers"])
        assert resp.status == 200
        sub = (await resp.json())["subscription"]
        assert sub["status"] == "active" and sub["cancelAtPeriodEnd"] is True and sub["plan"] == "starter"


async def test_renewal_checkouts_are_idempotent_by_key(db, settings, alice):
    who = (await billing.policy.actor(db, alice["id"]))
    provider = payments.provider_for(settings)
    first = await billing.create_checkout(db, settings, provider, None, who, "starter", key="renewal:x:2030-01")
    again = await billing.create_checkout(db, settings, provider, None, who, "starter", key="renewal:x:2030-01")
    assert first["_id"] == again["_id"]
    assert await db["checkouts"].count_documents({"user_id": alice["id"]}) == 1


@pytest.mark.parametrize("percent,expected", [(25, 675), (100, 0), (33, 603)])
async def test_coupon_discount_is_applied_on_the_server(api, db, settings, alice, percent, expected):
    await coupons.create(db, settings, SYSTEM, f"SAVE{percent}", percent)
    co = await checkout(api, alice, "starter", couponCode=f"save{percent}")
    assert (co["amount"], co["discountPercent"], co["couponCode"], co["baseAmount"]) == (
        expected, percent, f"SAVE{percent}", 900)
    if expected == 0:  # nothing to pay: active at once
        assert co["status"] == "paid"
        assert (await db["users"].find_one({"_id": alice["id"]}))["plan"] == "starter"


async def test_paying_again_unarchives_boards(api, db, settings, alice):
    board = (await (await api.post("/api/boards", json={"title": "b"}, headers=alice["headers"])).json())["board"]
    await db["boards"].update_one({"_id": board["id"]}, {"$set": {"archived_at": datetime(2030, 1, 1)}})
    co = await checkout(api, alice)
    assert (await deliver(api, settings, _event(co["id"], "evt-u"))).status == 200
    resp = await api.patch(f"/api/boards/{board['id']}", json={"title": "writable again"}, headers=alice["headers"])
    assert resp.status == 200
