"""/api/auth/password: forgotten passwords.

- ``POST /api/auth/password/forgot {email}``: the same 202 whether or not an account has that
  email (the request only queues a job: the same work either way); limited per email and per
  client address (``COLLABRY_PASSWORD_RESET_LIMIT``, 5 per hour); 503 ``email_unavailable`` where no
  SMTP server is configured. A gateway's mail sender (``gateway/mailer.py``) then creates a
  single-use token valid ``COLLABRY_PASSWORD_RESET_TTL`` (30 minutes) and emails it.
- ``POST /api/auth/password/reset {token, password}``: sets the new password, uses up the token
  (and every other reset token of the account) and revokes every session: refresh tokens, access
  tokens (Redis revocation keys) and sockets.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from pydantic import BaseModel, Field

from ...appkeys import DB, SETTINGS
from ...auth.passwords import password_weakness
from ...cache.ratelimit import email_pseudonym
from ...db.password_resets import PasswordResetRepository
from ...db.users import normalise_email
from ...errors import AppError
from ...metrics import AUTH_EVENTS
from ...web.api import RequestModel, Routes
from .. import mailer
from ..keys import LOGOUT_ALL_HOOKS, PASSWORDS, REFRESH_TOKENS, USERS
from ..revocation import sessions_revoked
from ..security import enforce, ip_of

log = structlog.get_logger("collabry.auth")
routes = Routes("password")


class ForgotBody(RequestModel):
    email: str = Field(min_length=3, max_length=254)


class ResetBody(RequestModel):
    token: str = Field(min_length=16, max_length=200)
    password: str = Field(max_length=1024)


class ForgotAnswer(BaseModel):
    status: str = "queued"
    message: str


FORGOT_ANSWER = {
    "status": "queued",
    "message": "if an account has this email, a reset link is on its way; it works once within 30 minutes",
}



@routes.post(
    "/api/auth/password/forgot",
    summary="Email a single-use password-reset link (the same answer whether or not the account exists)",
    auth=None,
    body=ForgotBody,
    responses={202: ForgotAnswer},
)
async def forgot(request: web.Request, body: ForgotBody) -> web.Response:
    unavailable = "this server cannot send email; ask its operator to reset the password"
    await queue_mail(request, "password_reset", body.email, unavailable=unavailable)
    AUTH_EVENTS.labels("password_reset_requested").inc()
    return web.json_response(FORGOT_ANSWER, status=202, headers={"Cache-Control": "no-store"})


async def queue_mail(request: web.Request, kind: str, address: str, *, unavailable: str) -> None:
    """Queue a ``kind`` email to ``address`` (the same work whether or not an account has it),
    within ``COLLABRY_PASSWORD_RESET_LIMIT`` per client address and per email; 503 without SMTP."""
    settings = request.app[SETTINGS]
    if not settings.smtp_url:
        raise AppError(status=503, code="email_unavailable", message=unavailable)
    email = normalise_email(address)
    rule = settings.password_reset_limit
    await enforce(request, f"{kind}_ip", ip_of(request), rule, fail_open=False)
    await enforce(request, f"{kind}_email", email_pseudonym(settings, email), rule, fail_open=False)
    await mailer.enqueue_for(request.app, kind, email)


@routes.post(
    "/api/auth/password/reset",
    summary="Set a new password with the emailed token; every session of the account is revoked",
    auth=None,
    body=ResetBody,
    responses={204: None},
)
async def reset(request: web.Request, body: ResetBody) -> web.Response:
    weakness = password_weakness(body.password)
    if weakness:
        raise AppError(status=400, code="weak_password", message=weakness)
    resets = PasswordResetRepository(request.app[DB])
    taken = await resets.take(mailer.token_hash(body.token.strip()))
    if taken is None:
        AUTH_EVENTS.labels("password_reset_invalid").inc()
        raise AppError(
            status=400, code="invalid_token", message="this reset link is unknown, used or expired; ask for a new one"
        )
    user_id = taken["user_id"]
    if await request.app[USERS].by_id(user_id) is None:
        raise AppError(
            status=400, code="invalid_token", message="this reset link is unknown, used or expired; ask for a new one"
        )
    await request.app[USERS].set_password_hash(user_id, await request.app[PASSWORDS].hash(body.password))
    await request.app[USERS].email_proven(user_id)  # the link reached the inbox: the address is theirs
    await resets.forget_user(user_id)
    store = request.app[REFRESH_TOKENS]
    active = [d["_id"] for d in await store.list_active(user_id)]
    await store.revoke_all(user_id)
    await sessions_revoked(request.app, user_id, active, "password_reset", notify=False)
    for hook in request.app.get(LOGOUT_ALL_HOOKS, []):
        await hook(request.app, user_id)
    AUTH_EVENTS.labels("password_reset").inc()
    log.info("password_reset", user_id=user_id, sessions_revoked=len(active))
    return web.Response(status=204, headers={"Cache-Control": "no-store"})
