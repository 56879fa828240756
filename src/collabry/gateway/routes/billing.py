"""Billing: /api/plans, /api/subscription*, /api/webhooks/payments, /api/coupons/validate.

Amounts are integers in minor units (cents) of ``Settings.billing_currency``. The webhook is
authenticated by its signature alone (docs/api.md, "Payment webhooks"): it is verified over the raw
bytes before the body is parsed, so an unsigned sender learns nothing but 401.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...appkeys import SETTINGS
from ...domain import billing, coupons, payments
from ...errors import AppError, Unauthorized
from ...metrics import WEBHOOK_REJECTIONS
from ...web.api import RequestModel, is_json_type, loads_json
from ...web.errors import validation_details
from ..resources import emitter_of
from ..security import enforce, ip_of
from ._domain import DomainRoutes, actor_of, db_of, json

log = structlog.get_logger("collabry.billing")
routes = DomainRoutes("billing")

PLAN_ID = Field(min_length=1, max_length=40)


class PlanLimitsView(BaseModel):
    aiPerDay: int
    uploadsPerDay: int
    storageBytes: int
    boards: int
    notebooks: int


class PlanView(BaseModel):
    id: str
    name: str
    price: int = Field(description="per billing period, in minor units (cents)")
    currency: str
    limits: PlanLimitsView


class PlanList(BaseModel):
    plans: list[PlanView]


class SubscriptionView(BaseModel):
    plan: str
    status: Literal["active", "past_due", "cancelled", "expired"]
    currentPeriodEnd: str | None
    cancelAtPeriodEnd: bool


class SubscriptionEnvelope(BaseModel):
    subscription: SubscriptionView


class CheckoutBody(RequestModel):
    planId: str = PLAN_ID
    couponCode: str | None = Field(default=None, max_length=64)


class CheckoutView(BaseModel):
    id: str
    planId: str
    amount: int
    currency: str
    baseAmount: int
    discountPercent: int
    couponCode: str | None
    status: Literal["pending", "paid", "failed"]
    provider: str
    instructions: str | None
    createdAt: str


class CheckoutEnvelope(BaseModel):
    checkout: CheckoutView


class InvoiceView(BaseModel):
    id: str
    planId: str
    amount: int
    currency: str
    status: str
    periodStart: str | None
    periodEnd: str | None
    createdAt: str


class InvoiceList(BaseModel):
    invoices: list[InvoiceView]


class CouponBody(RequestModel):
    code: str = Field(min_length=1, max_length=64)
    planId: str = PLAN_ID


class CouponVerdict(BaseModel):
    valid: bool
    discountPercent: int | None = None
    reason: str | None = None


class WebhookEvent(BaseModel):
    """A provider event; providers may add fields, which are ignored."""

    model_config = ConfigDict(extra="ignore")

    eventId: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100, description="payment.succeeded or payment.failed")
    checkoutId: str | None = Field(default=None, max_length=100)
    amount: int | None = Field(default=None, description="if sent, must equal the checkout's amount")
    currency: str | None = Field(default=None, max_length=10)


class WebhookAnswer(BaseModel):
    received: bool
    status: Literal["processed", "duplicate", "ignored"]


WEBHOOK_HEADERS = [
    {"name": payments.TIMESTAMP_HEADER, "in": "header", "required": False,
     "description": "Unix time (seconds) of the delivery; when sent, the signed message is '<timestamp>.<raw body>'",
     "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"}},
    {"name": payments.SIGNATURE_HEADER, "in": "header", "required": True,
     "description": "sha256=<hex HMAC-SHA256 of the raw body (or '<timestamp>.<raw body>') with the webhook secret>",
     "schema": {"type": "string"}},
]



@routes.get("/api/plans", summary="Plans, prices and limits", auth=None, responses={200: PlanList})
async def list_plans(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return json({"plans": [billing.public_plan(plan, settings.billing_currency) for plan in settings.plans]})


@routes.get("/api/subscription", summary="The user's subscription", responses={200: SubscriptionEnvelope})
async def get_subscription(request: web.Request) -> web.Response:
    who = await actor_of(request)
    sub = await billing.subscription_of(db_of(request), who.user_id)
    return json({"subscription": billing.public_subscription(sub)})


@routes.post("/api/subscription/checkout", summary="Start paying for a plan; the price is computed here",
             body=CheckoutBody, responses={201: CheckoutEnvelope})
async def checkout(request: web.Request, body: CheckoutBody) -> web.Response:
    who = await actor_of(request)
    settings = request.app[SETTINGS]
    doc = await billing.create_checkout(db_of(request), settings, payments.provider_for(settings),
                                        emitter_of(request), who, body.planId, body.couponCode or None)
    return json({"checkout": billing.public_checkout(doc)}, status=201)


@routes.post("/api/subscription/cancel", summary="Cancel at the end of the paid period",
             responses={200: SubscriptionEnvelope})
async def cancel_subscription(request: web.Request) -> web.Response:
    who = await actor_of(request)
    sub = await billing.cancel(db_of(request), payments.provider_for(request.app[SETTINGS]), who)
    return json({"subscription": billing.public_subscription(sub)})


@routes.get("/api/subscription/invoices", summary="The user's paid invoices", responses={200: InvoiceList})
async def list_invoices(request: web.Request) -> web.Response:
    who = await actor_of(request)
    docs = await billing.invoices_of(db_of(request), who.user_id)
    return json({"invoices": [billing.public_invoice(doc) for doc in docs]})


@routes.post("/api/coupons/validate", summary="Check a coupon for a plan (20 per hour per user)",
             body=CouponBody, responses={200: CouponVerdict})
async def validate_coupon(request: web.Request, body: CouponBody) -> web.Response:
    who = await actor_of(request)
    settings = request.app[SETTINGS]
    decision = await enforce(request, "coupon", who.user_id, settings.coupon_limit, fail_open=False)
    verdict = await coupons.check(db_of(request), who.user_id, body.code, body.planId)
    answer: dict[str, Any] = {"valid": verdict.valid}
    if verdict.valid and verdict.coupon is not None:
        answer["discountPercent"] = int(verdict.coupon["percent"])
    else:
        answer["reason"] = verdict.reason
    response = json(answer)
    if decision is not None:
        response.headers.update(decision.headers())
    return response


@routes.post(
    "/api/webhooks/payments",
    summary="Payment provider events, signed (see docs/api.md); idempotent by eventId",
    auth=None,
    request_bodies={"application/json": WebhookEvent},
    parameters=WEBHOOK_HEADERS,
    responses={200: WebhookAnswer},
)
async def payment_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_length is not None and request.content_length > settings.max_json_bytes:
        raise AppError(status=413, code="too_large", message="the event is too large")
    raw = await request.read()
    if len(raw) > settings.max_json_bytes:
        raise AppError(status=413, code="too_large", message="the event is too large")
    try:
        payments.verify(settings.webhook_secret, raw, request.headers.get(payments.SIGNATURE_HEADER),
                        request.headers.get(payments.TIMESTAMP_HEADER), tolerance=settings.webhook_tolerance)
    except Unauthorized as exc:
        # a security event: a forged or replayed delivery (collabry_webhook_rejections_total, alerted on)
        WEBHOOK_REJECTIONS.labels(exc.code).inc()
        log.warning("webhook_rejected", reason=exc.code, client_ip=ip_of(request))
        raise
    if not is_json_type(request.content_type):
        raise AppError(status=415, code="unsupported_media_type", message="send the event as application/json")
    try:
        event = WebhookEvent.model_validate(loads_json(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        details = validation_details(exc) if isinstance(exc, ValidationError) else None
        raise AppError(status=400, code="invalid_request", message="the event is not valid", details=details) from None
    try:
        status = await billing.process_event(db_of(request), settings, emitter_of(request), event.model_dump())
    except AppError:
        raise
    except Exception as exc:
        # The claim was released: answering 5xx makes the provider deliver again, and the retry
        # completes whatever this attempt stored.
        log.error("payment_event_failed", event_id=event.eventId, error=str(exc))
        raise AppError(
            status=503, code="processing_failed",
            message="the event could not be processed; deliver it again",
            headers={"Retry-After": "10"}) from None
    return json({"received": True, "status": status})
