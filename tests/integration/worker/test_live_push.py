"""A reminder the worker creates reaches the user's connected Socket.IO client through a gateway
(the worker only publishes on Redis; it has no socket server of its own)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp

from collabry.devstack.components import free_port
from tests.support.eventually import eventually

from ..realtime.support import account, open_socket
from .conftest import schedules, stamp


async def test_worker_reminder_reaches_a_connected_socket(spawn, run_worker, db):
    port = free_port()
    spawn("gateway", "gateway", "--port", str(port), port=port)
    url = f"http://127.0.0.1:{port}"
    user = await account(url, "Student")
    other = await account(url, "Bystander")
    created = datetime.now(UTC).replace(microsecond=0)  # BSON keeps milliseconds
    async with aiohttp.ClientSession(base_url=url) as http:
        resp = await http.post("/api/planner/tasks", headers=user.headers,
                               json={"title": "Essay draft", "dueAt": (created + timedelta(minutes=30)).isoformat()})
        assert resp.status == 201, await resp.text()
        task = (await resp.json())["task"]
    sock = await open_socket(url, user.token)
    bystander = await open_socket(url, other.token)
    try:
        # The minute slot right after the task was created covers it (created within that slot's minute).
        result = await asyncio.to_thread(
            run_worker, "run-due", "--now", stamp(created + timedelta(seconds=60)),
            extra_env={"COLLABRY_WORKER_SCHEDULES": schedules(reminders="* * * * *")})
        assert result.returncode == 0, result.stderr
        assert result.lines("job_run")[0]["items"] == {"task_due_soon": 1}

        await eventually(lambda: len(sock.received("notification")) == 1, what="the reminder on the socket")
        (pushed,) = sock.received("notification")
        assert pushed["type"] == "task_due_soon" and "Essay draft" in pushed["body"]
        stored = await db["notifications"].find_one({"user_id": user.id})
        assert pushed["id"] == stored["_id"]
        assert stored["dedupe_key"] == f"task_due_soon:{task['id']}:{task['dueAt']}"
        # Listed through the API as well, and nobody else got it.
        async with aiohttp.ClientSession(base_url=url) as http:
            listed = await (await http.get("/api/notifications", headers=user.headers)).json()
        assert [n["id"] for n in listed["notifications"]] == [stored["_id"]]
        assert bystander.received("notification") == []
    finally:
        await sock.close()
        await bystander.close()
