"""GET /api/auth/me without a database read: the public user comes from a short-lived Redis copy
(cache/users.py), read in the request's one Redis script, and dropped on every change."""

from __future__ import annotations

from typing import Any

from collabry.appkeys import DB, REDIS, SETTINGS
from collabry.cache.redis_keys import Keys
from collabry.domain import billing
from collabry.gateway.keys import USER_CACHE
from tests.support.redis_monitor import commands_during

from .helpers import PASSWORD, login, register


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def me(gateway: Any, headers: dict[str, str]) -> dict[str, Any]:
    resp = await gateway.get("/api/auth/me", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "RateLimit-Limit" in resp.headers
    user: dict[str, Any] = (await resp.json())["user"]
    return user


async def test_me_is_served_from_the_cache_and_follows_name_and_plan_changes(gateway: Any) -> None:
    app = gateway.server.app
    user = await register(gateway, name="Ada")
    headers = bearer(await login(gateway, user["email"]))
    first = await me(gateway, headers)  # a miss: read from the database, then cached
    assert first["name"] == "Ada" and first["id"] == user["id"] and first["emailVerified"] is True
    # Behind the application's back: the cached copy is what /me answers now (no database read).
    await app[DB]["users"].update_one({"_id": user["id"]}, {"$set": {"name": "Written behind"}})
    assert await me(gateway, headers) == first

    resp = await gateway.patch("/api/auth/me", json={"name": "Ada Lovelace"}, headers=headers)
    assert resp.status == 200
    assert (await me(gateway, headers))["name"] == "Ada Lovelace"  # the change dropped the copy

    paid = next(p.id for p in app[SETTINGS].plans if p.id != "free")
    await billing.set_user_plan(app[DB], user["id"], paid)  # what a payment (and a downgrade) calls
    assert (await me(gateway, headers))["plan"] == paid
    await billing.set_user_plan(app[DB], user["id"], "free")
    assert (await me(gateway, headers))["plan"] == "free"


async def test_a_reader_cannot_put_back_a_copy_older_than_the_last_change(gateway: Any) -> None:
    app = gateway.server.app
    cache, redis = app[USER_CACHE], app[REDIS]
    user = await register(gateway, name="Before")
    gen_key, doc_key = cache.key_pair(user["id"])
    seen = (await redis.get(gen_key) or b"0").decode()  # a reader missed and saw this generation
    await app[DB]["users"].update_one({"_id": user["id"]}, {"$set": {"name": "After"}})
    await cache.invalidate(user["id"])  # the writer: database first, then the invalidation
    assert not await cache.fill(user["id"], seen, b'{"name":"Before"}')  # the slow reader's stale copy
    assert await redis.get(doc_key) is None
    headers = bearer(await login(gateway, user["email"]))
    assert (await me(gateway, headers))["name"] == "After"


async def test_logged_out_and_erased_sessions_are_refused_even_with_a_cached_user(gateway: Any) -> None:
    user = await register(gateway)
    tokens = bearer(await login(gateway, user["email"]))
    await me(gateway, tokens)
    assert (await gateway.post("/api/auth/logout", headers=tokens)).status == 204
    resp = await gateway.get("/api/auth/me", headers=tokens)
    assert resp.status == 401 and "RateLimit-Limit" in resp.headers

    other = bearer(await login(gateway, user["email"]))
    await me(gateway, other)
    resp = await gateway.delete("/api/account", json={"password": PASSWORD}, headers=other)
    assert resp.status in (200, 202), await resp.text()
    assert (await gateway.get("/api/auth/me", headers=other)).status == 401
    app = gateway.server.app
    assert await app[REDIS].get(Keys(app[SETTINGS].redis_prefix).user_document(user["id"])) is None


async def test_a_valid_token_of_a_user_whose_cache_is_empty_and_database_row_gone_gets_401(gateway: Any) -> None:
    """Erasure without the sessions' revocation (a crash between the steps): the copy is gone with
    the account, so /me reads the database and finds nobody."""
    app = gateway.server.app
    user = await register(gateway)
    headers = bearer(await login(gateway, user["email"]))
    await me(gateway, headers)
    await app[DB]["users"].delete_one({"_id": user["id"]})
    await app[USER_CACHE].invalidate(user["id"])
    assert (await gateway.get("/api/auth/me", headers=headers)).status == 401


async def test_an_authenticated_me_sends_redis_one_command(gateway: Any, settings: Any) -> None:
    """What the gateway sends Redis for one /me with a cached user, watched with MONITOR: one
    EVALSHA (the limit, the revocation and the user inside it), nothing else."""
    user = await register(gateway)
    headers = bearer(await login(gateway, user["email"]))
    await me(gateway, headers)  # fills the cache
    _, seen = await commands_during(settings.redis_url, lambda: me(gateway, headers))
    sent = [info["command"].split()[0].upper() for info in seen if info["client_type"] != "lua"]
    assert sent == ["EVALSHA"], sent
