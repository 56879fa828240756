"""Security events of a real gateway process: an account lockout, a refresh-token reuse and refused
payment webhooks each raise their Prometheus counter (what monitoring/alerts.yml alerts on) and log
a warning line that, passed through the log-shipping transform (deploy/vector.toml), keeps its
request id and carries no email address."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import aiohttp

from collabry.devstack.components import free_port
from collabry.domain import payments
from tests.static.test_log_shipping import journal_entry, remap
from tests.support.eventually import eventually

from .helpers import PASSWORD, login, register


def counter(metrics: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}{{{re.escape(want)}}} (\S+)$", metrics, re.M)
    return float(match.group(1)) if match else 0.0


async def test_security_events_are_counted_and_shipped_with_their_request_ids(spawn, secrets_dir: Path):
    port = free_port()
    gateway = spawn("gateway", "gateway", "--port", str(port), port=port,
                    extra_env={"COLLABRY_ACCOUNT_FAILURE_LIMIT": "3/900"})  # fmt: skip
    webhook_secret = (secrets_dir / "webhook-secret").read_text().strip()
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
        # an account locked by failures from several addresses
        victim = await register(http)
        for i in range(3):
            resp = await http.post(
                "/api/auth/login", json={"email": victim["email"], "password": "wrong password 1"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}", "X-Request-ID": f"lock-{i}"},
            )  # fmt: skip
            assert resp.status == 401
        resp = await http.post("/api/auth/login", json={"email": victim["email"], "password": PASSWORD})
        assert resp.status == 423

        # a refresh token used twice
        user = await register(http)
        first = await login(http, user["email"])
        assert (await http.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})).status == 200
        reuse = await http.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]},
                                headers={"X-Request-ID": "reuse-1"})  # fmt: skip
        assert reuse.status == 401 and (await reuse.json())["error"]["code"] == "token_reused"

        # payment webhooks: a forged signature, and a correctly signed but replayed (stale) delivery
        body = json.dumps({"eventId": "evt_1", "type": "payment.succeeded", "checkoutId": "c1"}).encode()
        forged = payments.signed_headers("not-the-secret", body) | {"X-Request-ID": "hook-1"}
        resp = await http.post("/api/webhooks/payments", data=body, headers=forged)
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_signature"
        stale = payments.signed_headers(webhook_secret, body, timestamp=int(time.time()) - 3600)
        resp = await http.post("/api/webhooks/payments", data=body, headers=stale | {"X-Request-ID": "hook-2"})
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "stale_timestamp"

        metrics = await (await http.get("/metrics")).text()
    assert counter(metrics, "collabry_auth_events_total", event="lockout") == 1
    assert counter(metrics, "collabry_auth_events_total", event="token_reused") == 1
    assert counter(metrics, "collabry_webhook_rejections_total", reason="invalid_signature") == 1
    assert counter(metrics, "collabry_webhook_rejections_total", reason="stale_timestamp") == 1

    def lines() -> list[dict]:
        return [json.loads(x) for x in gateway.log_path.read_text().splitlines() if x.startswith("{")]

    wanted = {("account_lockout", "lock-2"), ("refresh_token_reused", "reuse-1"),
              ("webhook_rejected", "hook-1"), ("webhook_rejected", "hook-2")}  # fmt: skip
    await eventually(lambda: wanted <= {(x.get("event"), x.get("request_id")) for x in lines()},
                     timeout=10, what="the security events' log lines")  # fmt: skip
    raw = [x for x in gateway.log_path.read_text().splitlines() if x.startswith("{")]
    shipped = [remap(journal_entry(x, _SYSTEMD_UNIT=f"collabry-gateway@{port}.service")) for x in raw]
    assert wanted <= {(s.get("event"), s.get("request_id")) for s in shipped}
    assert all(s["unit"] == f"collabry-gateway@{port}.service" for s in shipped)
    text = json.dumps(shipped)
    assert victim["email"] not in text and user["email"] not in text  # accounts appear as keyed hashes
    assert PASSWORD not in text and first["refreshToken"] not in text
