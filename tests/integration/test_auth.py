"""Auth rules of API.md against the real gateway app, real FerretDB and real Redis."""

from __future__ import annotations

import asyncio
import time

import jwt

from .helpers import PASSWORD, login, new_email, register, user_with_token


async def test_register_login_me(gateway):
    user = await register(gateway, new_email().upper())
    assert user["email"] == user["email"].lower() or "@" in user["email"]
    assert user["plan"] == "free"
    tokens = await login(gateway, user["email"].lower())
    assert tokens["expiresIn"] == 900
    assert tokens["user"]["id"] == user["id"]
    resp = await gateway.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
    assert resp.status == 200
    assert (await resp.json())["user"]["id"] == user["id"]
    cookie = resp.cookies  # the cookie came with the login response
    assert cookie is not None


async def test_login_sets_httponly_refresh_cookie(gateway):
    user = await register(gateway)
    resp = await gateway.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    header = resp.headers.getone("Set-Cookie")
    assert "collabry_refresh=" in header
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/api/auth" in header
    assert "Secure" in header  # production mode


async def test_email_unique_case_insensitive(gateway):
    email = new_email()
    await register(gateway, email)
    resp = await gateway.post("/api/auth/register", json={"email": email.upper(), "password": PASSWORD, "name": "x"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "email_taken"


async def test_weak_passwords_refused(gateway):
    for password in ("short1A", "alllowercaseletters", "1234567890123"):
        resp = await gateway.post("/api/auth/register", json={"email": new_email(), "password": password, "name": "x"})
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "weak_password"


async def test_wrong_password_and_unknown_email_look_the_same(gateway):
    user = await register(gateway)
    a = await gateway.post("/api/auth/login", json={"email": user["email"], "password": "wrong password 1"})
    b = await gateway.post("/api/auth/login", json={"email": new_email(), "password": "wrong password 1"})
    assert a.status == b.status == 401
    assert (await a.json()) == (await b.json())
    assert (await a.json())["error"]["code"] == "invalid_credentials"


async def test_sixth_failure_from_one_ip_gets_429(gateway):
    user = await register(gateway)
    for _ in range(5):
        resp = await gateway.post("/api/auth/login", json={"email": user["email"], "password": "wrong password 1"})
        assert resp.status == 401
    resp = await gateway.post("/api/auth/login", json={"email": user["email"], "password": "wrong password 1"})
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0
    # the limit is per (IP, email): another account from the same IP is unaffected
    other = await register(gateway)
    resp = await gateway.post("/api/auth/login", json={"email": other["email"], "password": PASSWORD})
    assert resp.status == 200


async def test_ten_failures_from_many_ips_lock_the_account(gateway):
    user = await register(gateway)
    # The test server trusts 127.0.0.1 as a proxy, so X-Forwarded-For picks the client address.
    for i in range(10):
        resp = await gateway.post(
            "/api/auth/login",
            json={"email": user["email"], "password": "wrong password 1"},
            headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
        )
        assert resp.status == 401, i
    resp = await gateway.post(
        "/api/auth/login",
        json={"email": user["email"], "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert resp.status == 423
    assert (await resp.json())["error"]["code"] == "account_locked"


async def test_refresh_rotation_and_reuse_revokes_family(gateway):
    user = await register(gateway)
    first = await login(gateway, user["email"])
    r1 = await gateway.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert r1.status == 200
    second = await r1.json()
    assert second["refreshToken"] != first["refreshToken"]
    # replay the first token: reuse detected
    reuse = await gateway.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reuse.status == 401
    assert (await reuse.json())["error"]["code"] == "token_reused"
    # the newest token of that family is dead too
    newest = await gateway.post("/api/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert newest.status == 401
    # another login of the same user is unaffected
    other = await login(gateway, user["email"])
    ok = await gateway.post("/api/auth/refresh", json={"refreshToken": other["refreshToken"]})
    assert ok.status == 200


async def test_refresh_from_cookie(gateway):
    user = await register(gateway)
    resp = await gateway.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    token = resp.cookies["collabry_refresh"].value
    gateway.session.cookie_jar.clear()  # the cookie is Secure: send it by hand over plain HTTP
    resp = await gateway.post("/api/auth/refresh", headers={"Cookie": f"collabry_refresh={token}"})
    assert resp.status == 200, await resp.text()


async def test_logout_and_logout_all(gateway):
    user = await register(gateway)
    a = await login(gateway, user["email"])
    b = await login(gateway, user["email"])
    headers = {"Authorization": f"Bearer {a['accessToken']}"}
    resp = await gateway.post("/api/auth/logout", headers=headers)
    assert resp.status == 204
    assert (await gateway.post("/api/auth/refresh", json={"refreshToken": a["refreshToken"]})).status == 401
    assert (await gateway.post("/api/auth/refresh", json={"refreshToken": b["refreshToken"]})).status == 200
    # the access token of the session that logged out stops at once, not when it expires
    assert (await gateway.get("/api/auth/me", headers=headers)).status == 401
    assert (await gateway.get("/api/auth/me", headers={"Authorization": f"Bearer {b['accessToken']}"})).status == 200
    c = await login(gateway, user["email"])
    resp = await gateway.post("/api/auth/logout-all", headers={"Authorization": f"Bearer {b['accessToken']}"})
    assert resp.status == 204
    for tokens in (b, c):
        resp = await gateway.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        assert resp.status == 401
    fresh = await login(gateway, user["email"])
    sessions = await gateway.get("/api/auth/sessions", headers={"Authorization": f"Bearer {fresh['accessToken']}"})
    assert [s["current"] for s in (await sessions.json())["sessions"]] == [True]


async def test_sessions_list_and_user_b_cannot_revoke_user_a(gateway):
    a = await user_with_token(gateway, "a")
    b = await user_with_token(gateway, "b")
    resp = await gateway.get("/api/auth/sessions", headers=a["headers"])
    sessions = (await resp.json())["sessions"]
    assert len(sessions) == 1 and sessions[0]["current"] is True
    sid = sessions[0]["id"]
    resp = await gateway.delete(f"/api/auth/sessions/{sid}", headers=b["headers"])
    assert resp.status == 404
    assert (await gateway.post("/api/auth/refresh", json={"refreshToken": a["refreshToken"]})).status == 200
    resp = await gateway.delete(f"/api/auth/sessions/{sid}", headers=a["headers"])
    assert resp.status == 204


async def test_invalid_expired_and_tampered_tokens(gateway, settings):
    a = await user_with_token(gateway)
    token = a["accessToken"]
    header, payload, sig = token.split(".")
    tampered = f"{header}.{payload}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    expired = jwt.encode(
        {"sub": a["id"], "iat": 1, "exp": int(time.time()) - 10, "jti": "x", "typ": "access"},
        settings.jwt_secret,
        algorithm="HS256",
    )
    none_alg = jwt.encode(
        {"sub": a["id"], "iat": 1, "exp": int(time.time()) + 100, "jti": "x", "typ": "access"}, None, algorithm="none"
    )
    for bad in (tampered, expired, none_alg, "garbage", ""):
        resp = await gateway.get("/api/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert resp.status == 401, bad
        assert (await resp.json())["error"]["code"] == "unauthorized"
    resp = await gateway.get("/api/auth/me")
    assert resp.status == 401


async def test_bad_input_gets_clear_4xx(gateway):
    cases = [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_request"),
        (b'{"email": 5, "password": "x", "name": "y"}', 400, "invalid_request"),
        (b'{"email": "a@b.co", "password": "correct horse 42", "name": "y", "admin": true}', 400, "invalid_request"),
        (b'{"email": "a@b.co"}', 400, "invalid_request"),
    ]
    for body, status, code in cases:
        resp = await gateway.post("/api/auth/register", data=body, headers={"Content-Type": "application/json"})
        assert resp.status == status, body
        assert (await resp.json())["error"]["code"] == code
    huge = b'{"email": "' + b"a" * (2 * 2**20) + b'"}'
    resp = await gateway.post("/api/auth/register", data=huge, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"
    resp = await gateway.get("/api/nope")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await gateway.put("/api/auth/login")
    assert resp.status == 405


async def test_request_id_echo_and_generation(gateway):
    resp = await gateway.get("/health", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = await gateway.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"] != "bad id with spaces" and len(resp.headers["X-Request-ID"]) == 16


async def test_concurrent_use_of_one_refresh_token_has_one_winner(gateway):
    import asyncio

    user = await register(gateway)
    tokens = await login(gateway, user["email"])
    responses = await asyncio.gather(
        *(gateway.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]}) for _ in range(10))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses.count(200) <= 1
    assert statuses.count(401) >= 9
    # any replay means theft: the family is gone, including a winner's fresh token
    for r in responses:
        if r.status == 200:
            newest = (await r.json())["refreshToken"]
            assert (await gateway.post("/api/auth/refresh", json={"refreshToken": newest})).status == 401


async def _gateway_with(aiohttp_client, env, **overrides):
    from collabry.config import load_settings
    from collabry.gateway.app import create_app

    settings = load_settings({**env, **overrides}, require=("jwt-secret", "service-token"))
    return await aiohttp_client(await create_app(settings))


async def _fail(client, email, ip):
    resp = await client.post(
        "/api/auth/login", json={"email": email, "password": "wrong password 1"}, headers={"X-Forwarded-For": ip}
    )
    return resp.status


async def test_ip_and_email_failures_are_counted_in_a_sliding_window(aiohttp_client, env):
    # 2 failures per 3 s: pacing the next failure (GCRA would let one through after 1.5 s) does
    # not help; only the first failure leaving the window frees a try.
    client = await _gateway_with(aiohttp_client, env, COLLABRY_LOGIN_FAILURE_LIMIT="2/3")
    user = await register(client)
    started = time.monotonic()
    assert [await _fail(client, user["email"], "203.0.113.9") for _ in range(2)] == [401, 401]
    assert await _fail(client, user["email"], "203.0.113.9") == 429
    await asyncio.sleep(max(0.0, started + 2.0 - time.monotonic()))
    resp = await client.post(
        "/api/auth/login",
        json={"email": user["email"], "password": "wrong password 1"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert resp.status == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 2
    await asyncio.sleep(max(0.0, started + 3.3 - time.monotonic()))
    statuses = [await _fail(client, user["email"], "203.0.113.9") for _ in range(3)]
    assert statuses == [401, 401, 429]


async def test_paced_failures_from_many_addresses_lock_the_account(aiohttp_client, env):
    # 4 failures per 4 s lock the account, however they are spread over addresses and time
    # inside the window (a paced allowance never reached zero this way).
    client = await _gateway_with(
        aiohttp_client, env, COLLABRY_ACCOUNT_FAILURE_LIMIT="4/4", COLLABRY_ACCOUNT_LOCK_SECONDS="60"
    )
    user = await register(client)
    for i in range(4):
        if i:
            await asyncio.sleep(0.9)  # the pacing is the point of the test, not a synchronisation
        assert await _fail(client, user["email"], f"203.0.113.{20 + i}") == 401
    resp = await client.post(
        "/api/auth/login",
        json={"email": user["email"], "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.1"},
    )
    assert resp.status == 423
    assert int(resp.headers["Retry-After"]) > 50


async def test_failures_outside_the_account_window_do_not_lock(aiohttp_client, env):
    client = await _gateway_with(aiohttp_client, env, COLLABRY_ACCOUNT_FAILURE_LIMIT="3/1.5")
    user = await register(client)
    for i in range(2):
        assert await _fail(client, user["email"], f"203.0.113.{40 + i}") == 401
    await asyncio.sleep(1.7)  # let both failures leave the window
    for i in range(2):
        assert await _fail(client, user["email"], f"203.0.113.{50 + i}") == 401
    await login(client, user["email"], headers={"X-Forwarded-For": "198.51.100.2"})


async def test_login_keys_and_logs_never_carry_the_email(gateway, infra, capsys):
    import redis.asyncio as aioredis

    user = await register(gateway)
    typed = "my secret password 99"  # a password typed into the email field
    for email in (user["email"], typed):
        resp = await gateway.post("/api/auth/login", json={"email": email, "password": "wrong password 1"})
        assert resp.status == 401
    redis = aioredis.Redis.from_url(infra.redis_url)
    try:
        keys = [k.decode() for k in await redis.keys("*")]
    finally:
        await redis.aclose()
    assert any(":lock:" in k or "loginw" in k for k in keys), keys
    for key in keys:
        assert user["email"].split("@")[0] not in key and "secret" not in key, key
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "login_failed" in logged
    assert user["email"].split("@")[0] not in logged and typed not in logged


async def test_names_are_checked_after_trimming(gateway):
    for name in ("   ", "\t\n", "\u0000", "a\u0007b", "\u200b", " " * 99 + "\u202e"):
        resp = await gateway.post(
            "/api/auth/register", json={"email": new_email(), "password": PASSWORD, "name": name}
        )
        assert resp.status == 400, repr(name)
        assert (await resp.json())["error"]["code"] == "invalid_request"
    user = await register(gateway, name="  Ada Lovelace  ")
    assert user["name"] == "Ada Lovelace"


async def test_token_responses_are_not_stored(gateway):
    user = await register(gateway)
    resp = await gateway.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    refresh_token = (await resp.json())["refreshToken"]
    resp = await gateway.post("/api/auth/refresh", json={"refreshToken": refresh_token})
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
