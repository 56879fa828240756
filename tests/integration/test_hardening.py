"""Odd input and slow clients through nginx: 400/415 instead of 500s, safe headers, bounded slowness."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import aiohttp
import pytest

from collabry.devstack.components import free_port

from .helpers import new_email, register

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def public_url(spawn, nginx_for) -> str:
    port = free_port()
    spawn(f"gateway-{port}", "gateway", "--port", str(port), port=port,
          extra_env={"COLLABRY_GLOBAL_LIMIT": "100000/900"})
    _, public = nginx_for([port])
    return f"http://127.0.0.1:{public}"


async def _user(http: aiohttp.ClientSession) -> dict[str, str]:
    user = await register(http, new_email())
    async with http.post("/api/auth/login", json={"email": user["email"], "password": user["password"]}) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        return {"Authorization": f"Bearer {(await resp.json())['accessToken']}"}


async def test_malformed_bodies_are_400_never_500(public_url, secrets_dir):
    async with aiohttp.ClientSession(base_url=public_url) as http:
        auth = await _user(http)
        cases = [
            # (bodies stay under nginx's in-memory body buffer: the test nginx runs its workers as
            # another user, who cannot write body files into pytest's private temporary folder)
            ("/api/boards", b"[" * 3000 + b"]" * 3000),
            ("/api/boards", b'{"title": ' + b"[" * 40 + b"]" * 40 + b"}"),
            ("/api/boards", b'{"title": ' + b"7" * 5000 + b"}"),
            ("/api/planner/tasks", b'{"title": "t", "dueAt": ' + b"9" * 30 + b"}"),
            ("/api/planner/tasks", b'{"title": "t", "dueAt": "0001-01-01T00:00:00+05:00"}'),
            ("/api/planner/tasks", b'{"title": "t", "dueAt": "9999-12-31T23:59:59-05:00"}'),
            ("/api/ai/quiz", b'{"notebookId": "x", "count": ' + b"1" * 5000 + b"}"),
            ("/api/boards", b'{"title": NaN}'),
            ("/api/boards", b'{"title": "\xff\xfe"}'),
        ]
        for path, body in cases:
            async with http.post(path, data=body, headers={**auth, **JSON}) as resp:
                assert resp.status == 400, (path, body[:60], resp.status, await resp.text())
                assert (await resp.json())["error"]["code"] in ("invalid_json", "invalid_request")
        # a correctly signed webhook whose body is nested too deeply
        secret = (secrets_dir / "webhook-secret").read_text().strip()
        for body in (b"[" * 3000 + b"]" * 3000, b'{"eventId": "e", "type": "payment.succeeded", "x": '
                     + b"[" * 60 + b"]" * 60 + b"}"):
            sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {**JSON, "X-Collabry-Signature": f"sha256={sig}"}
            async with http.post("/api/webhooks/payments", data=body, headers=headers) as resp:
                assert resp.status == 400, await resp.text()


async def test_json_routes_refuse_other_content_types(public_url, secrets_dir):
    async with aiohttp.ClientSession(base_url=public_url) as http:
        auth = await _user(http)
        body = json.dumps({"title": "cross-site"})
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            async with http.post("/api/boards", data=body, headers={**auth, "Content-Type": ctype}) as resp:
                assert resp.status == 415, (ctype, await resp.text())
                assert (await resp.json())["error"]["code"] == "unsupported_media_type"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.headers["Cache-Control"] == "no-store"
        async with http.post("/api/auth/login", data=json.dumps({"email": "a@b.co", "password": "x"}),
                             headers={"Content-Type": "text/plain"}) as resp:
            assert resp.status == 415
        async with http.post("/api/boards", data=body, headers={**auth, **JSON}) as resp:
            assert resp.status == 201
        secret = (secrets_dir / "webhook-secret").read_text().strip()
        raw = b'{"eventId": "e1", "type": "payment.succeeded", "checkoutId": "none"}'
        sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        async with http.post("/api/webhooks/payments", data=raw,
                             headers={"Content-Type": "text/plain", "X-Collabry-Signature": f"sha256={sig}"}) as resp:
            assert resp.status == 415


async def _stalled_post(port: int, ip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))
    writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{")
    await writer.drain()
    return reader, writer


async def test_nginx_bounds_slow_bodies_and_connections_per_address(public_url):
    port = int(public_url.rsplit(":", 1)[1])
    started = time.monotonic()
    conns = [await _stalled_post(port, "127.0.0.3") for _ in range(256)]
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.3", 0))) as http:
            async with http.get(f"{public_url}/health") as resp:
                assert resp.status == 429  # the 257th connection of one address
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.4", 0))) as http:
            async with http.get(f"{public_url}/health") as resp:
                assert resp.status == 200  # other addresses are served
        # a body that stalls is answered 408 and closed after the body timeout, not held forever
        reader, _ = conns[0]
        answer = await asyncio.wait_for(reader.read(), timeout=20)
        assert answer == b"" or b" 408 " in answer.split(b"\r\n", 1)[0], answer[:80]
        assert time.monotonic() - started < 20
    finally:
        for _, writer in conns:
            writer.close()


async def _login_from(url: str, ip: str, email: str, password: str) -> int:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(ip, 0))) as http:
        async with http.post(f"{url}/api/auth/login", json={"email": email, "password": password}) as resp:
            return resp.status


async def test_login_windows_through_nginx(spawn, nginx_for):
    # Short windows: 2 failures per (address, email) in 3 s; 4 per account in 6 s lock it for a minute.
    port = free_port()
    spawn(f"gateway-{port}", "gateway", "--port", str(port), port=port, extra_env={
        "COLLABRY_GLOBAL_LIMIT": "100000/900", "COLLABRY_LOGIN_FAILURE_LIMIT": "2/3",
        "COLLABRY_ACCOUNT_FAILURE_LIMIT": "4/6", "COLLABRY_ACCOUNT_LOCK_SECONDS": "60"})
    _, public = nginx_for([port])
    url = f"http://127.0.0.1:{public}"
    async with aiohttp.ClientSession(base_url=url) as http:
        user = await register(http, new_email())
    wrong = "wrong password 1"
    started = time.monotonic()
    assert [await _login_from(url, "127.0.0.5", user["email"], wrong) for _ in range(3)] == [401, 401, 429]
    await asyncio.sleep(1.6)  # paced: a rate (GCRA) would have freed a try by now, a window has not
    assert await _login_from(url, "127.0.0.5", user["email"], wrong) == 429
    # two more failures from other addresses, still inside the account's window: locked
    assert await _login_from(url, "127.0.0.6", user["email"], wrong) == 401
    assert await _login_from(url, "127.0.0.7", user["email"], wrong) == 401
    assert time.monotonic() - started < 6
    assert await _login_from(url, "127.0.0.8", user["email"], user["password"]) == 423
