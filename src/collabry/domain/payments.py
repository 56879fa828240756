"""The payment provider interface, the built-in ``manual`` provider and webhook signatures.

Webhook signing (docs/api.md), two accepted forms, both compared in constant time:

- the contract's form: ``X-Collabry-Signature: sha256=<hex>`` = HMAC-SHA256 of the raw body with
  the ``webhook-secret``; the replay window then applies to a ``timestamp`` (unix seconds) field of
  the signed JSON body when the sender includes one;
- the timestamped form: with ``X-Collabry-Timestamp: <unix seconds>`` present, the HMAC covers
  ``<timestamp>.<raw body>`` and the header's time must be fresh.

A time further than ``Settings.webhook_tolerance`` seconds from our clock is refused, so a captured
delivery cannot be replayed later; within the window the event id makes a replay a no-op.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Protocol

from ..config import Settings
from ..errors import Unauthorized

SIGNATURE_HEADER = "X-Collabry-Signature"
TIMESTAMP_HEADER = "X-Collabry-Timestamp"
SCHEME = "sha256="


def signature(secret: str, timestamp: int | str | None, body: bytes) -> str:
    message = body if timestamp is None else f"{timestamp}.".encode("ascii") + body
    return SCHEME + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _body_timestamp(body: bytes) -> int | None:
    try:
        value = json.loads(body).get("timestamp")
    except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        return None  # the route refuses a body that is no JSON object (400) once it is verified
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers a sender attaches (the CLI's manual confirmation and the tests use this)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret, ts, body),
            "Content-Type": "application/json"}


def verify(secret: str, body: bytes, sent_signature: str | None, sent_timestamp: str | None, *,
           tolerance: int, now: float | None = None) -> None:
    """Raise ``Unauthorized`` unless the delivery is signed with ``secret`` and fresh."""
    if not secret:
        raise Unauthorized("webhooks are not configured on this server", code="invalid_signature")
    malformed_time = sent_timestamp is not None and (not sent_timestamp.isdigit() or len(sent_timestamp) > 12)
    if not sent_signature or malformed_time:
        raise Unauthorized("missing or malformed signature headers", code="invalid_signature")
    expected = signature(secret, sent_timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), sent_signature.strip().encode("utf-8", "replace")):
        raise Unauthorized("the signature does not match", code="invalid_signature")
    signed_time = int(sent_timestamp) if sent_timestamp is not None else _body_timestamp(body)
    current = time.time() if now is None else now
    if signed_time is not None and abs(current - signed_time) > tolerance:
        raise Unauthorized("the timestamp is outside the accepted window", code="stale_timestamp")


@dataclass(frozen=True, slots=True)
class CheckoutIntent:
    checkout_id: str
    user_id: str
    plan_id: str
    amount: int  # minor units (cents)
    currency: str
    description: str


@dataclass(frozen=True, slots=True)
class ProviderCheckout:
    provider: str
    reference: str
    payment_url: str | None = None
    instructions: str | None = None


class PaymentProvider(Protocol):
    """A payment service. It learns the amount from us and reports payments by signed webhook."""

    name: str

    async def start_checkout(self, intent: CheckoutIntent) -> ProviderCheckout: ...

    async def cancel_renewal(self, user_id: str, subscription_id: str) -> None: ...


class ManualProvider:
    """Payments confirmed by an operator (bank transfer, invoice): ``collabry payment confirm``
    sends the same signed ``payment.succeeded`` event an online provider would."""

    name = "manual"

    async def start_checkout(self, intent: CheckoutIntent) -> ProviderCheckout:
        return ProviderCheckout(
            provider=self.name,
            reference=intent.checkout_id,
            instructions=f"Pay {intent.amount / 100:.2f} {intent.currency.upper()} quoting reference "
            f"{intent.checkout_id}; the plan activates when the payment is confirmed.",
        )

    async def cancel_renewal(self, user_id: str, subscription_id: str) -> None:
        return None  # nothing is scheduled at the provider


PROVIDERS: dict[str, type[ManualProvider]] = {"manual": ManualProvider}


def provider_for(settings: Settings) -> PaymentProvider:
    return PROVIDERS[settings.payment_provider]()
