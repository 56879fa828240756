"""The contract's signature form (HMAC of the raw body alone) is accepted too."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from collabry.domain import payments


def body_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_raw_body_signature_without_timestamp_header():
    body = json.dumps({"eventId": "evt_1", "type": "payment.succeeded", "checkoutId": "c"}).encode()
    payments.verify("s3cret", body, body_signature("s3cret", body), None, tolerance=300)


def test_raw_body_signature_checks_a_signed_body_timestamp():
    fresh = json.dumps({"eventId": "e", "timestamp": int(time.time())}).encode()
    payments.verify("s3cret", fresh, body_signature("s3cret", fresh), None, tolerance=300)
    stale = json.dumps({"eventId": "e", "timestamp": int(time.time()) - 3600}).encode()
    with pytest.raises(payments.Unauthorized) as info:
        payments.verify("s3cret", stale, body_signature("s3cret", stale), None, tolerance=300)
    assert info.value.code == "stale_timestamp"


def test_raw_body_signature_mismatch_is_refused():
    body = b'{"eventId": "e"}'
    with pytest.raises(payments.Unauthorized) as info:
        payments.verify("s3cret", body, body_signature("other", body), None, tolerance=300)
    assert info.value.code == "invalid_signature"
