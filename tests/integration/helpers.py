"""Small client helpers shared by the integration tests."""

from __future__ import annotations

import secrets
from typing import Any

PASSWORD = "correct horse 42"


def new_email(tag: str = "user") -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


async def register(
    client: Any, email: str | None = None, password: str = PASSWORD, name: str = "Test"
) -> dict[str, Any]:
    email = email or new_email()
    resp = await client.post("/api/auth/register", json={"email": email, "password": password, "name": name})
    assert resp.status == 201, await resp.text()
    return {"email": email, "password": password, **(await resp.json())["user"]}


async def login(client: Any, email: str, password: str = PASSWORD, **kw: Any) -> dict[str, Any]:
    resp = await client.post("/api/auth/login", json={"email": email, "password": password}, **kw)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def user_with_token(client: Any, tag: str = "user") -> dict[str, Any]:
    user = await register(client, new_email(tag))
    tokens = await login(client, user["email"])
    return {**user, **tokens, "headers": {"Authorization": f"Bearer {tokens['accessToken']}"}}
