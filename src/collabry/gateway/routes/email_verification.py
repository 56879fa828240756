"""Confirmed email addresses, where the operator requires them (``COLLABRY_EMAIL_VERIFICATION=required``).

Registration then creates the account unconfirmed and queues a confirmation email (a single-use
link valid ``COLLABRY_EMAIL_VERIFICATION_TTL``, 48 hours; only its SHA-256 is stored); login
answers 403 ``email_unverified`` until the link is used.

- ``POST /api/auth/email/verify {token}``: confirms; 200 ``{user}``, or 400 ``invalid_token``.
- ``POST /api/auth/email/resend {email}``: a new link; the same 202 whether or not an unconfirmed
  account has that email, limited like forgotten passwords; 503 ``email_unavailable`` without SMTP.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from pydantic import Field

from ...db.users import public_user
from ...errors import AppError
from ...metrics import AUTH_EVENTS
from ...web.api import RequestModel, Routes
from .. import mailer
from ..keys import USERS
from .auth import UserEnvelope
from .password import ForgotAnswer, queue_mail

log = structlog.get_logger("collabry.auth")
routes = Routes("email")

RESEND_ANSWER = {
    "status": "queued",
    "message": "if an account with this email waits for its confirmation, a new link is on its way",
}


class VerifyBody(RequestModel):
    token: str = Field(min_length=16, max_length=200)


class ResendBody(RequestModel):
    email: str = Field(min_length=3, max_length=254)


@routes.post(
    "/api/auth/email/verify",
    summary="Confirm the account's email with the emailed token",
    auth=None,
    body=VerifyBody,
    responses={200: UserEnvelope},
)
async def verify(request: web.Request, body: VerifyBody) -> web.Response:
    user = await request.app[USERS].confirm_email(mailer.token_hash(body.token.strip()))
    if user is None:
        AUTH_EVENTS.labels("email_verification_invalid").inc()
        raise AppError(
            status=400, code="invalid_token",
            message="this confirmation link is unknown, used or expired; ask for a new one",
        )
    AUTH_EVENTS.labels("email_verified").inc()
    log.info("email_verified", user_id=user["_id"])
    return web.json_response({"user": public_user(user)}, headers={"Cache-Control": "no-store"})


@routes.post(
    "/api/auth/email/resend",
    summary="Email a new confirmation link (the same answer whether or not the account exists)",
    auth=None,
    body=ResendBody,
    responses={202: ForgotAnswer},
)
async def resend(request: web.Request, body: ResendBody) -> web.Response:
    await queue_mail(request, "email_verification", body.email, unavailable="this server cannot send email")
    return web.json_response(RESEND_ANSWER, status=202, headers={"Cache-Control": "no-store"})
