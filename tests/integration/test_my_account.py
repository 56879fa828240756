"""PATCH /api/auth/me: the user's name, and a password change that needs the current password
and signs out every other session (the one that made the change stays)."""

from __future__ import annotations

from typing import Any

from .helpers import PASSWORD, login, register

NEW_PASSWORD = "a different passphrase 8"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def test_the_name_changes_and_bad_names_are_refused(gateway: Any) -> None:
    user = await register(gateway, name="Old Name")
    me = bearer(await login(gateway, user["email"]))
    resp = await gateway.patch("/api/auth/me", json={"name": "  Grace Hopper "}, headers=me)
    assert resp.status == 200 and (await resp.json())["user"]["name"] == "Grace Hopper"
    assert (await (await gateway.get("/api/auth/me", headers=me)).json())["user"]["name"] == "Grace Hopper"
    for body in ({"name": "   "}, {"name": "a\u200bb"}, {}, {"email": "other@example.com"}, {"name": "x" * 101}):
        resp = await gateway.patch("/api/auth/me", json=body, headers=me)
        assert resp.status == 400, body
    assert (await gateway.patch("/api/auth/me", json={"name": "Nobody"})).status == 401


async def test_a_password_change_needs_the_current_one_and_signs_out_the_other_sessions(gateway: Any) -> None:
    user = await register(gateway)
    here, elsewhere = await login(gateway, user["email"]), await login(gateway, user["email"])
    for body, status in (
        ({"password": NEW_PASSWORD}, 403),
        ({"password": NEW_PASSWORD, "currentPassword": "not my password"}, 403),
        ({"password": "short", "currentPassword": PASSWORD}, 400),
    ):
        resp = await gateway.patch("/api/auth/me", json=body, headers=bearer(here))
        assert resp.status == status, (body, await resp.text())
    assert await login(gateway, user["email"])  # nothing changed so far

    resp = await gateway.patch(
        "/api/auth/me", json={"password": NEW_PASSWORD, "currentPassword": PASSWORD}, headers=bearer(here)
    )
    assert resp.status == 200, await resp.text()
    # the other session is gone at once; this one stays
    assert (await gateway.get("/api/auth/me", headers=bearer(elsewhere))).status == 401
    refreshed = await gateway.post("/api/auth/refresh", json={"refreshToken": elsewhere["refreshToken"]})
    assert refreshed.status == 401
    assert (await gateway.get("/api/auth/me", headers=bearer(here))).status == 200
    assert (await gateway.post("/api/auth/refresh", json={"refreshToken": here["refreshToken"]})).status == 200
    old = await gateway.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert old.status == 401
    assert await login(gateway, user["email"], NEW_PASSWORD)
