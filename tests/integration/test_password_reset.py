"""Forgotten passwords against a real SMTP server (aiosmtpd, with AUTH): the same answer for known
and unknown emails, the delivered message read back, a single-use token, every session revoked,
the limit per email, and a clear 503 where no SMTP server is configured."""

from __future__ import annotations

import asyncio
import email
import email.policy
import queue
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from collabry.config import load_settings
from collabry.devstack.components import free_port

from .helpers import PASSWORD, login, register

# The test server takes AUTH over plain TCP on loopback (aiosmtpd warns about that, rightly).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SMTP_USER, SMTP_PASSWORD = "collabry", "smtp password from a file"
NEW_PASSWORD = "a brand new passphrase 7"


class Inbox:
    """aiosmtpd handler: every delivered message, parsed, in a queue."""

    def __init__(self) -> None:
        self.messages: queue.Queue[EmailMessage] = queue.Queue()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.put(message)  # type: ignore[arg-type]
        return "250 OK"

    async def next(self, timeout: float = 15) -> EmailMessage:
        """The next delivered message (waits in a thread: the gateway's sender shares this loop)."""
        return await asyncio.to_thread(self.messages.get, True, timeout)


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(), SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_required=True, auth_require_tls=False
    )
    controller.start()
    yield port, inbox
    controller.stop()


def mail_env(env: dict[str, str], smtp_port: int, tmp_path: Path) -> dict[str, str]:
    """``env`` with SMTP configured for the test server, its password in a secret file."""
    secret = tmp_path / "smtp-password"
    secret.write_text(SMTP_PASSWORD + "\n")
    secret.chmod(0o600)
    return {
        **env,
        "COLLABRY_SMTP_URL": f"smtp://{SMTP_USER}@127.0.0.1:{smtp_port}",
        "COLLABRY_SMTP_PASSWORD_FILE": str(secret),
        "COLLABRY_MAIL_FROM": "Collabry <study@example.org>",
        "COLLABRY_PUBLIC_URL": "https://study.example.org",
    }


@pytest.fixture
async def mail_gateway(
    aiohttp_client: Callable[..., Any], env: dict[str, str], smtp: tuple[int, Inbox], tmp_path: Path
) -> Any:
    from collabry.gateway.app import create_app

    settings = load_settings(mail_env(env, smtp[0], tmp_path), require=("jwt-secret",))
    return await aiohttp_client(await create_app(settings))


def token_of(message: EmailMessage) -> str:
    body = message.get_content()
    match = re.search(r"https://study\.example\.org/reset-password\?token=([A-Za-z0-9_-]+)", body)
    assert match, body
    assert f"enter this code in the app: {match.group(1)}" in body
    return match.group(1)


async def test_forgot_password_emails_a_single_use_link_and_reset_revokes_every_session(
    mail_gateway: Any, smtp: tuple[int, Inbox], mongo: Any
) -> None:
    client, inbox = mail_gateway, smtp[1]
    user = await register(client, name="Ada")
    first, second = await login(client, user["email"]), await login(client, user["email"])

    # the unknown address first: the sender takes jobs in order, so once the known one's message
    # arrives, the unknown one has been handled (and sent nothing)
    answers = []
    for address in ("nobody-here@example.com", user["email"].upper()):
        resp = await client.post("/api/auth/password/forgot", json={"email": address})
        assert resp.status == 202
        answers.append(await resp.json())
    assert answers[0] == answers[1]  # nothing tells whether the account exists

    message = await inbox.next()
    assert message["To"] == user["email"] and message["X-Envelope-To"] == user["email"]
    assert message["From"] == "Collabry <study@example.org>" and "Reset your Collabry password" in message["Subject"]
    assert "Hello Ada" in message.get_content() and "30 minutes" in message.get_content()
    token = token_of(message)
    assert inbox.messages.empty()
    stored = mongo["password_resets"].find_one({"user_id": user["id"]})
    assert stored is not None and token not in str(stored)  # only the hash is kept
    assert (stored["expires_at"] - stored["created_at"]).total_seconds() == 30 * 60

    weak = await client.post("/api/auth/password/reset", json={"token": token, "password": "short"})
    assert weak.status == 400 and (await weak.json())["error"]["code"] == "weak_password"
    resp = await client.post("/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert resp.status == 204, await resp.text()

    # every session is gone: refresh tokens and access tokens
    for tokens in (first, second):
        refreshed = await client.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
        assert refreshed.status == 401
        me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        assert me.status == 401
    # the old password no longer works, the new one does
    old = await client.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert old.status == 401
    assert await login(client, user["email"], NEW_PASSWORD)
    # the token worked once
    again = await client.post("/api/auth/password/reset", json={"token": token, "password": "another passphrase 9"})
    assert again.status == 400 and (await again.json())["error"]["code"] == "invalid_token"
    assert mongo["password_resets"].count_documents({"user_id": user["id"]}) == 0


async def test_expired_and_unknown_tokens_are_refused(mail_gateway: Any, smtp: tuple[int, Inbox], mongo: Any) -> None:
    client, inbox = mail_gateway, smtp[1]
    user = await register(client)
    tokens = []
    for _ in range(2):
        assert (await client.post("/api/auth/password/forgot", json={"email": user["email"]})).status == 202
        tokens.append(token_of(await inbox.next()))
    # a second request replaces the first link
    resp = await client.post("/api/auth/password/reset", json={"token": tokens[0], "password": NEW_PASSWORD})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_token"
    token = tokens[1]
    # 31 minutes later
    mongo["password_resets"].update_one({"user_id": user["id"]}, [{"$set": {"expires_at": "$created_at"}}])
    resp = await client.post("/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_token"
    resp = await client.post("/api/auth/password/reset", json={"token": "x" * 43, "password": NEW_PASSWORD})
    assert resp.status == 400
    assert await login(client, user["email"])  # the password did not change


async def test_forgot_password_is_limited_per_email(mail_gateway: Any, smtp: tuple[int, Inbox]) -> None:
    client = mail_gateway
    statuses = []
    for i in range(6):
        resp = await client.post(
            "/api/auth/password/forgot", json={"email": "target@example.com"},
            headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
        )  # fmt: skip
        statuses.append(resp.status)
    assert statuses == [202] * 5 + [429]


async def test_without_smtp_the_endpoint_says_so(gateway: Any) -> None:
    user = await register(gateway)
    resp = await gateway.post("/api/auth/password/forgot", json={"email": user["email"]})
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "email_unavailable"


def test_smtp_settings_keep_the_password_out_of_the_url_and_environment() -> None:
    from collabry.config import ConfigError

    for bad in ({"COLLABRY_SMTP_URL": "smtp://user:secret@mail.example.org"},
                {"COLLABRY_SMTP_URL": "http://mail.example.org"},
                {"COLLABRY_SMTP_URL": "smtp://"},
                {"COLLABRY_SMTP_PASSWORD": "plain"}):  # fmt: skip
        with pytest.raises(ConfigError):
            load_settings(bad)
    settings = load_settings({"COLLABRY_SMTP_URL": "smtps://collabry@mail.example.org"})
    assert settings.smtp_url == "smtps://collabry@mail.example.org" and settings.smtp_password == ""
