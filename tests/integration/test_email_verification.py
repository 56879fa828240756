"""Confirmed email addresses (``COLLABRY_EMAIL_VERIFICATION=required``) against a real SMTP
server: a new account cannot sign in until the emailed single-use link is used, a new link replaces
the old one, and the setting is refused without SMTP. Off (the default), nothing changes."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from collabry.config import ConfigError, load_settings

from .helpers import PASSWORD, login, new_email
from .test_password_reset import Inbox, mail_env, smtp  # noqa: F401 - smtp is a fixture

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
async def confirming_gateway(
    aiohttp_client: Callable[..., Any], env: dict[str, str], smtp: tuple[int, Inbox], tmp_path: Path  # noqa: F811
) -> Any:
    from collabry.gateway.app import create_app

    settings_env = {**mail_env(env, smtp[0], tmp_path), "COLLABRY_EMAIL_VERIFICATION": "required"}
    return await aiohttp_client(await create_app(load_settings(settings_env, require=("jwt-secret",))))


def confirmation_token(message: EmailMessage) -> str:
    body = message.get_content()
    match = re.search(r"https://study\.example\.org/verify-email\?token=([A-Za-z0-9_-]+)", body)
    assert match, body
    return match.group(1)


async def sign_in(client: Any, email: str) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    return resp.status, await resp.json()


async def test_a_new_account_signs_in_only_after_its_email_is_confirmed(
    confirming_gateway: Any, smtp: tuple[int, Inbox], mongo: Any  # noqa: F811
) -> None:
    client, inbox = confirming_gateway, smtp[1]
    email = new_email("confirm")
    resp = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Ada"})
    assert resp.status == 201 and (await resp.json())["user"]["emailVerified"] is False
    first = await inbox.next()
    assert first["To"] == email and "Confirm your email" in first["Subject"] and "48 hours" in first.get_content()
    old_token = confirmation_token(first)
    stored = mongo["users"].find_one({"email": email})
    assert old_token not in str(stored)  # only the hash is kept

    status, body = await sign_in(client, email)
    assert status == 403 and body["error"]["code"] == "email_unverified"
    wrong_password = await client.post("/api/auth/login", json={"email": email, "password": "not the password"})
    assert wrong_password.status == 401  # a wrong password does not learn that the account waits

    # a new link replaces the old one; an unknown address gets the same answer and no mail
    answers = []
    for address in ("nobody-here@example.com", email.upper()):
        resp = await client.post("/api/auth/email/resend", json={"email": address})
        assert resp.status == 202
        answers.append(await resp.json())
    assert answers[0] == answers[1]
    token = confirmation_token(await inbox.next())
    assert inbox.messages.empty() and token != old_token
    resp = await client.post("/api/auth/email/verify", json={"token": old_token})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_token"

    resp = await client.post("/api/auth/email/verify", json={"token": token})
    assert resp.status == 200 and (await resp.json())["user"]["emailVerified"] is True
    tokens = await login(client, email)
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
    assert (await me.json())["user"]["emailVerified"] is True
    # used once; a confirmed account gets no more links
    again = await client.post("/api/auth/email/verify", json={"token": token})
    assert again.status == 400
    assert (await client.post("/api/auth/email/resend", json={"email": email})).status == 202
    assert (await client.post("/api/auth/email/resend", json={"email": "nobody-else@example.com"})).status == 202
    marker = new_email("marker")
    await client.post("/api/auth/register", json={"email": marker, "password": PASSWORD, "name": "Marker"})
    assert (await inbox.next())["To"] == marker  # the sender handled the jobs before it, mailing nothing


async def test_without_the_setting_accounts_sign_in_at_once_and_verification_needs_smtp(
    gateway: Any, env: dict[str, str]
) -> None:
    email = new_email("plain")
    resp = await gateway.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Bo"})
    assert resp.status == 201 and (await resp.json())["user"]["emailVerified"] is True
    assert await login(gateway, email)
    resp = await gateway.post("/api/auth/email/resend", json={"email": email})
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "email_unavailable"
    with pytest.raises(ConfigError, match="COLLABRY_EMAIL_VERIFICATION"):
        load_settings({**env, "COLLABRY_EMAIL_VERIFICATION": "required"}, require=("jwt-secret",))
    with pytest.raises(ConfigError, match="COLLABRY_EMAIL_VERIFICATION"):
        load_settings({**env, "COLLABRY_EMAIL_VERIFICATION": "maybe"}, require=("jwt-secret",))
