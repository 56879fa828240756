"""Outgoing email: a Redis queue that requests append to, and a sender in every gateway.

A request never talks to the mail server: `POST /api/auth/password/forgot` (and registration or
`POST /api/auth/email/resend` where emails must be confirmed) appends one job to the list
``<prefix>mail:outbox`` (the same work whether the account exists or not) and answers. Each
gateway runs ``mail_ctx``'s task, which takes jobs one at a time (BLPOP: one gateway gets each),
looks the account up, creates the token (a password reset, or an email confirmation) and sends
the message over SMTP
(``COLLABRY_SMTP_URL``: ``smtp://[user@]host[:port]`` with STARTTLS when offered, or
``smtps://``; the password from the ``smtp-password`` secret file) from a thread. A failed send is
retried a few times, then logged and dropped; the user can ask again. Log lines name the account
by its keyed hash, never by the email, and never carry the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import smtplib
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import quote, urlsplit

import structlog
from aiohttp import web

from ..appkeys import DB, REDIS, SETTINGS
from ..cache.client import REDIS_ERRORS
from ..cache.ratelimit import email_pseudonym
from ..config import Settings
from ..db.client import utcnow
from ..db.password_resets import PasswordResetRepository
from ..db.users import UserRepository

log = structlog.get_logger("collabry.mail")

ATTEMPTS = 3


def outbox_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}mail:outbox"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def enqueue(app: web.Application, job: dict[str, Any]) -> None:
    await app[REDIS].rpush(outbox_key(app[SETTINGS]), json.dumps(job))


async def enqueue_for(app: web.Application, kind: str, email: str) -> None:
    """Queue a ``kind`` message to ``email``, tagged with the current request's id for the logs."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    await enqueue(app, {"kind": kind, "email": email, "request_id": request_id})


def send_message(settings: Settings, message: EmailMessage) -> None:
    """Deliver one message over SMTP (blocking: run it in a thread)."""
    url = urlsplit(settings.smtp_url)
    context = ssl.create_default_context()
    host = url.hostname or "localhost"
    server: smtplib.SMTP
    if url.scheme == "smtps":
        server = smtplib.SMTP_SSL(host, url.port or 465, timeout=30, context=context)
    else:
        server = smtplib.SMTP(host, url.port or 25, timeout=30)
    with server:
        server.ehlo()
        if url.scheme == "smtp" and server.has_extn("starttls"):
            server.starttls(context=context)
            server.ehlo()
        if url.username:
            server.login(url.username, settings.smtp_password)
        server.send_message(message)


def reset_message(settings: Settings, to: str, name: str, token: str) -> EmailMessage:
    minutes = settings.password_reset_ttl // 60
    link = f"{settings.public_url}/reset-password?token={quote(token)}"
    message = EmailMessage()
    message["Subject"] = "Reset your Collabry password"
    message["From"] = settings.mail_from
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="collabry")
    message.set_content(
        f"Hello {name},\n\n"
        f"someone (hopefully you) asked to reset the password of your Collabry account.\n"
        f"Open this link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
        f"or enter this code in the app: {token}\n\n"
        "The link works once. If you did not ask for it, ignore this message: your password stays "
        "as it is.\n"
    )
    return message


def verification_message(settings: Settings, to: str, name: str, token: str) -> EmailMessage:
    hours = settings.email_verification_ttl // 3600
    link = f"{settings.public_url}/verify-email?token={quote(token)}"
    message = EmailMessage()
    message["Subject"] = "Confirm your email for Collabry"
    message["From"] = settings.mail_from
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="collabry")
    message.set_content(
        f"Hello {name},\n\n"
        f"welcome to Collabry. Open this link within {hours} hours to confirm your email address:\n\n"
        f"{link}\n\nor enter this code in the app: {token}\n\n"
        "If you did not create an account, ignore this message: without the confirmation nobody can "
        "sign in with it.\n"
    )
    return message


async def _password_reset(app: web.Application, job: dict[str, Any], account: str) -> EmailMessage | None:
    settings = app[SETTINGS]
    user = await UserRepository(app[DB]).by_email(str(job["email"]))
    if user is None:
        log.info("password_reset_unknown_account", account=account)
        return None
    token = secrets.token_urlsafe(32)
    resets = PasswordResetRepository(app[DB])
    await resets.forget_user(user["_id"])  # only the latest link works
    await resets.create(token_hash(token), user["_id"], settings.password_reset_ttl)
    return reset_message(settings, user["email"], user.get("name", ""), token)


async def _email_verification(app: web.Application, job: dict[str, Any], account: str) -> EmailMessage | None:
    settings, users = app[SETTINGS], UserRepository(app[DB])
    user = await users.by_email(str(job["email"]))
    if user is None or not user.get("email_unverified"):
        log.info("email_verification_not_needed", account=account)
        return None
    token = secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(seconds=settings.email_verification_ttl)
    if not await users.set_email_check(user["_id"], token_hash(token), expires):  # confirmed meanwhile
        return None
    return verification_message(settings, user["email"], user.get("name", ""), token)


KINDS = {"password_reset": _password_reset, "email_verification": _email_verification}


async def handle(app: web.Application, job: dict[str, Any]) -> None:
    settings = app[SETTINGS]
    kind = str(job.get("kind"))
    make = KINDS.get(kind)
    if make is None:
        log.error("mail_job_unknown", kind=kind)
        return
    account = email_pseudonym(settings, str(job["email"]))
    message = await make(app, job, account)
    if message is None:
        return
    for attempt in range(1, ATTEMPTS + 1):
        try:
            await asyncio.to_thread(send_message, settings, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail_send_failed", account=account, attempt=attempt, error=type(exc).__name__)
            if attempt == ATTEMPTS:
                log.error("mail_dropped", account=account, kind=kind)
                return
            await asyncio.sleep(2**attempt)
        else:
            log.info("mail_sent", account=account, kind=kind, request_id=job.get("request_id"))
            return


async def run_sender(app: web.Application, stopping: asyncio.Event) -> None:
    """Take jobs from the outbox until ``stopping`` is set (and the task cancelled).

    The loop checks the event rather than trusting the cancellation alone: a cancellation that
    lands inside a client library can come out as one of its own errors, which the handlers below
    log and survive, and the sender would then run on after its gateway stopped.
    """
    redis, key = app[REDIS], outbox_key(app[SETTINGS])
    while not stopping.is_set():
        try:
            item = await redis.blpop([key], timeout=1)  # below the client's socket timeout
        except REDIS_ERRORS as exc:
            log.warning("mail_outbox_unavailable", error=str(exc))
            await asyncio.sleep(2)
            continue
        if item is None:
            continue
        try:
            await handle(app, json.loads(item[1]))
        except Exception as exc:  # one bad job must not stop the sender
            log.error("mail_job_failed", error=type(exc).__name__)


async def mail_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the sender runs while the app does (only where SMTP is configured)."""
    stopping = asyncio.Event()
    task = asyncio.create_task(run_sender(app, stopping)) if app[SETTINGS].smtp_url else None
    yield
    if task is not None:
        stopping.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
