"""Outgoing email: a Redis queue that requests append to, and a sender in every gateway.

A request never talks to the mail server: `POST /api/auth/password/forgot` appends one job to the
list ``<prefix>mail:outbox`` (the same work whether the account exists or not) and answers. Each
gateway runs ``mail_ctx``'s task, which takes jobs one at a time (BLPOP: one gateway gets each),
looks the account up, creates the reset token and sends the message over SMTP
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


async def handle(app: web.Application, job: dict[str, Any]) -> None:
    settings = app[SETTINGS]
    if job.get("kind") != "password_reset":
        log.error("mail_job_unknown", kind=str(job.get("kind")))
        return
    email = str(job["email"])
    account = email_pseudonym(settings, email)
    user = await UserRepository(app[DB]).by_email(email)
    if user is None:
        log.info("password_reset_unknown_account", account=account)
        return
    token = secrets.token_urlsafe(32)
    resets = PasswordResetRepository(app[DB])
    await resets.forget_user(user["_id"])  # only the latest link works
    await resets.create(token_hash(token), user["_id"], settings.password_reset_ttl)
    message = reset_message(settings, user["email"], user.get("name", ""), token)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            await asyncio.to_thread(send_message, settings, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail_send_failed", account=account, attempt=attempt, error=type(exc).__name__)
            if attempt == ATTEMPTS:
                log.error("mail_dropped", account=account, kind="password_reset")
                return
            await asyncio.sleep(2**attempt)
        else:
            log.info("mail_sent", account=account, kind="password_reset", request_id=job.get("request_id"))
            return


async def run_sender(app: web.Application) -> None:
    """Take jobs from the outbox until cancelled."""
    redis, key = app[REDIS], outbox_key(app[SETTINGS])
    while True:
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
    task = asyncio.create_task(run_sender(app)) if app[SETTINGS].smtp_url else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
