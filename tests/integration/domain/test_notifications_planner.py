"""Notifications (one service, deduplicated, pushed live) and planner tasks."""

from __future__ import annotations

import asyncio
from typing import Any

from collabry.domain.notifications import notify


class RecordingEmitter:
    """Collects what the service hands to the Socket.IO emitter (the emitter itself is tested with sockets)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.fail = fail

    async def to_user(self, user_id: str, event: str, data: Any) -> None:
        if self.fail:
            raise ConnectionError("redis down")
        self.sent.append((user_id, event, data))


async def test_notify_stores_pushes_and_deduplicates(api, db, alice):
    emitter = RecordingEmitter()
    created = await asyncio.gather(*[
        notify(db, emitter, alice["id"], "task_overdue", "Overdue", "Essay", dedupe_key="task_overdue:t1:2030")
        for _ in range(5)
    ])
    assert sum(1 for c in created if c is not None) == 1
    assert len(emitter.sent) == 1
    user_id, event, data = emitter.sent[0]
    assert (user_id, event) == (alice["id"], "notification")
    assert data == {"id": data["id"], "type": "task_overdue", "title": "Overdue", "body": "Essay"}
    # a failed push keeps the notification; no emitter works too
    assert await notify(db, RecordingEmitter(fail=True), alice["id"], "info", "a", "b") is not None
    assert await notify(db, None, alice["id"], "info", "c", "d") is not None
    body = await (await api.get("/api/notifications", headers=alice["headers"])).json()
    assert body["unread"] == 3
    assert [n["title"] for n in body["notifications"]] == ["c", "a", "Overdue"]  # newest first


async def test_read_one_read_all_and_unread_filter(api, db, alice):
    ids = [(await notify(db, None, alice["id"], "info", f"n{i}", "x"))["_id"] for i in range(3)]
    assert (await api.post(f"/api/notifications/{ids[0]}/read", headers=alice["headers"])).status == 204
    assert (await api.post(f"/api/notifications/{ids[0]}/read", headers=alice["headers"])).status == 204
    body = await (await api.get("/api/notifications?unread=true", headers=alice["headers"])).json()
    assert body["unread"] == 2 and {n["id"] for n in body["notifications"]} == set(ids[1:])
    assert all(n["read"] is False for n in body["notifications"])
    assert (await api.post("/api/notifications/read-all", headers=alice["headers"])).status == 204
    body = await (await api.get("/api/notifications", headers=alice["headers"])).json()
    assert body["unread"] == 0 and all(n["read"] for n in body["notifications"])
    assert (await api.get("/api/notifications?unread=maybe", headers=alice["headers"])).status == 400
    assert (await api.get("/api/notifications?limit=1", headers=alice["headers"])).status == 200
    assert (await api.get("/api/notifications?other=1", headers=alice["headers"])).status == 400


async def test_planner_crud(api, alice):
    h = alice["headers"]
    resp = await api.post("/api/planner/tasks", json={"title": "Essay", "dueAt": "2030-05-01T09:00:00+02:00"},
                          headers=h)
    assert resp.status == 201
    task = (await resp.json())["task"]
    assert task["dueAt"] == "2030-05-01T07:00:00Z" and task["done"] is False
    early = (await (await api.post("/api/planner/tasks", json={"title": "Read", "dueAt": "2030-04-01T00:00:00Z"},
                                   headers=h)).json())["task"]
    listed = (await (await api.get("/api/planner/tasks", headers=h)).json())["tasks"]
    assert [t["id"] for t in listed] == [early["id"], task["id"]]  # by due date
    resp = await api.patch(f"/api/planner/tasks/{task['id']}", json={"done": True, "title": "Essay draft"}, headers=h)
    assert resp.status == 200
    changed = (await resp.json())["task"]
    assert changed["done"] is True and changed["title"] == "Essay draft" and changed["dueAt"] == task["dueAt"]
    assert [t["id"] for t in (await (await api.get("/api/planner/tasks?status=open", headers=h)).json())["tasks"]] == [
        early["id"]]
    assert [t["id"] for t in (await (await api.get("/api/planner/tasks?status=done", headers=h)).json())["tasks"]] == [
        task["id"]]
    assert (await api.delete(f"/api/planner/tasks/{task['id']}", headers=h)).status == 204
    assert (await api.get(f"/api/planner/tasks/{task['id']}", headers=h)).status == 404


async def test_planner_validation(api, alice):
    h = alice["headers"]
    for body in ({"title": "x", "dueAt": "2030-05-01T09:00:00"},  # no time zone: ambiguous
                 {"title": "x", "dueAt": "tomorrow"}, {"title": "", "dueAt": "2030-05-01T09:00:00Z"},
                 {"title": "x"}, {"title": "x", "dueAt": "2030-05-01T09:00:00Z", "userId": "someone"}):
        assert (await api.post("/api/planner/tasks", json=body, headers=h)).status == 400, body
    task = (await (await api.post("/api/planner/tasks", json={"title": "x", "dueAt": "2030-05-01T09:00:00Z"},
                                  headers=h)).json())["task"]
    for patch in ({"title": None}, {"done": None}, {"dueAt": None}, {"done": "perhaps"}, {"title": "   "}):
        assert (await api.patch(f"/api/planner/tasks/{task['id']}", json=patch, headers=h)).status == 400, patch


async def test_task_due_time_round_trips_exactly(gateway):
    from ..helpers import user_with_token

    a = await user_with_token(gateway, "due")
    created = await gateway.post("/api/planner/tasks", json={"title": "Essay", "dueAt": "2030-01-02T03:04:05.678901Z"},
                                 headers=a["headers"])
    assert created.status == 201
    task = (await created.json())["task"]
    listed = (await (await gateway.get("/api/planner/tasks", headers=a["headers"])).json())["tasks"]
    assert [t["dueAt"] for t in listed if t["id"] == task["id"]] == [task["dueAt"]]
    assert task["dueAt"].startswith("2030-01-02T03:04:05.678")
