"""Authorisation matrix: for every resource type and endpoint, another user's ids are 404, a
viewer cannot write, an editor cannot delete or manage members; and nothing changed afterwards."""

from __future__ import annotations

from typing import Any

import pytest

from collabry.db.client import new_id, utcnow
from collabry.domain.notifications import notify

from ..helpers import user_with_token


async def _json(resp) -> Any:
    assert resp.status < 300, await resp.text()
    return await resp.json() if resp.status != 204 else None


@pytest.fixture
async def world(api, db, alice, bob) -> dict[str, Any]:
    """Alice's resources of every kind, an editor and a viewer on her board, and Bob, a stranger."""
    h = alice["headers"]
    erin = await user_with_token(api, "erin")
    vic = await user_with_token(api, "vic")
    board = (await _json(await api.post("/api/boards", json={"title": "A"}, headers=h)))["board"]
    for member, role in ((erin, "editor"), (vic, "viewer")):
        await _json(await api.post(f"/api/boards/{board['id']}/members", json={"email": member["email"], "role": role},
                                   headers=h))
    binned = (await _json(await api.post("/api/boards", json={"title": "old"}, headers=h)))["board"]
    await _json(await api.delete(f"/api/boards/{binned['id']}", headers=h))
    notebook = (await _json(await api.post("/api/notebooks", json={"title": "N"}, headers=h)))["notebook"]
    old_nb = (await _json(await api.post("/api/notebooks", json={"title": "old"}, headers=h)))["notebook"]
    await _json(await api.delete(f"/api/notebooks/{old_nb['id']}", headers=h))
    # A source document as the upload path leaves it (the upload path itself is tested with the engine).
    source_id = new_id()
    await db["sources"].insert_one({
        "_id": source_id, "user_id": alice["id"], "notebook_id": notebook["id"], "title": "notes.txt", "kind": "text",
        "content_type": "text/plain", "status": "ready", "chunks": 1, "error": None, "size": 5, "sha256": "0" * 64,
        "file": f"{source_id}.txt", "created_at": utcnow(), "updated_at": utcnow(), "deleted_at": None,
    })
    task = (await _json(await api.post("/api/planner/tasks", json={"title": "T", "dueAt": "2030-01-01T10:00:00Z"},
                                       headers=h)))["task"]
    note = await notify(db, None, alice["id"], "test", "hello", "body")
    bob_nb = (await _json(await api.post("/api/notebooks", json={"title": "B"}, headers=bob["headers"])))["notebook"]
    return {"board": board["id"], "binned": binned["id"], "notebook": notebook["id"], "old_nb": old_nb["id"],
            "source": source_id, "task": task["id"], "note": note["_id"], "erin": erin, "vic": vic,
            "bob_nb": bob_nb["id"]}


def owner_only_calls(w: dict[str, Any], alice_id: str) -> list[tuple[str, str, Any]]:
    b, n, s = w["board"], w["notebook"], w["source"]
    return [
        ("GET", f"/api/boards/{b}", None),
        ("PATCH", f"/api/boards/{b}", {"title": "x"}),
        ("DELETE", f"/api/boards/{b}", None),
        ("GET", f"/api/boards/{b}/snapshot", None),
        ("POST", f"/api/boards/{b}/members", {"email": "someone@example.com", "role": "editor"}),
        ("DELETE", f"/api/boards/{b}/members/{w['erin']['id']}", None),
        ("POST", f"/api/boards/{w['binned']}/restore", None),
        ("GET", f"/api/notebooks/{n}", None),
        ("PATCH", f"/api/notebooks/{n}", {"title": "x"}),
        ("DELETE", f"/api/notebooks/{n}", None),
        ("POST", f"/api/notebooks/{w['old_nb']}/restore", None),
        ("GET", f"/api/notebooks/{n}/sources", None),
        ("POST", f"/api/notebooks/{n}/sources", {"title": "t", "text": "some text"}),
        ("GET", f"/api/notebooks/{n}/sources/{s}", None),
        ("DELETE", f"/api/notebooks/{n}/sources/{s}", None),
        # Alice's source reached through Bob's own notebook
        ("GET", f"/api/notebooks/{w['bob_nb']}/sources/{s}", None),
        ("DELETE", f"/api/notebooks/{w['bob_nb']}/sources/{s}", None),
        ("GET", f"/api/planner/tasks/{w['task']}", None),
        ("PATCH", f"/api/planner/tasks/{w['task']}", {"done": True}),
        ("DELETE", f"/api/planner/tasks/{w['task']}", None),
        ("POST", f"/api/notifications/{w['note']}/read", None),
    ]


async def _call(api, method: str, path: str, body: Any, headers: dict[str, str]):
    return await api.request(method, path, json=body, headers=headers)


async def test_another_users_ids_are_404_everywhere(api, db, alice, bob, world):
    for method, path, body in owner_only_calls(world, alice["id"]):
        resp = await _call(api, method, path, body, bob["headers"])
        assert resp.status == 404, (method, path, resp.status, await resp.text())
        assert (await resp.json())["error"]["code"] == "not_found"
    # lists show nothing of Alice's
    alices = {v for k, v in world.items() if isinstance(v, str) and k != "bob_nb"}
    for path, key in (("/api/boards", "boards"), ("/api/notebooks", "notebooks"), ("/api/planner/tasks", "tasks"),
                      ("/api/notifications", "notifications"), ("/api/boards/trash", "boards"),
                      ("/api/notebooks/trash", "notebooks")):
        items = (await (await api.get(path, headers=bob["headers"])).json())[key]
        assert all(item["id"] not in alices for item in items), path
    await _assert_untouched(api, db, alice, world)


async def test_viewer_reads_but_cannot_write(api, db, alice, world):
    vic, b = world["vic"]["headers"], world["board"]
    assert (await api.get(f"/api/boards/{b}", headers=vic)).status == 200
    assert (await api.get(f"/api/boards/{b}/snapshot", headers=vic)).status == 200
    for method, path, body in (
        ("PATCH", f"/api/boards/{b}", {"title": "x"}),
        ("DELETE", f"/api/boards/{b}", None),
        ("POST", f"/api/boards/{b}/members", {"email": world["erin"]["email"], "role": "viewer"}),
        ("DELETE", f"/api/boards/{b}/members/{world['erin']['id']}", None),
    ):
        resp = await _call(api, method, path, body, vic)
        assert resp.status == 403, (method, path, resp.status)
        assert (await resp.json())["error"]["code"] == "forbidden"
    # a member role does not reach the owner's other resources
    for method, path, body in owner_only_calls(world, alice["id"])[7:]:
        assert (await _call(api, method, path, body, vic)).status == 404, (method, path)
    await _assert_untouched(api, db, alice, world)


async def test_editor_writes_but_cannot_delete_or_manage_members(api, db, alice, world):
    erin, b = world["erin"]["headers"], world["board"]
    resp = await api.patch(f"/api/boards/{b}", json={"title": "Edited"}, headers=erin)
    assert resp.status == 200 and (await resp.json())["board"]["role"] == "editor"
    for method, path, body in (
        ("DELETE", f"/api/boards/{b}", None),
        ("POST", f"/api/boards/{b}/members", {"email": world["vic"]["email"], "role": "editor"}),
        ("DELETE", f"/api/boards/{b}/members/{world['vic']['id']}", None),
    ):
        resp = await _call(api, method, path, body, erin)
        assert resp.status == 403, (method, path, resp.status)
    assert (await api.post(f"/api/boards/{world['binned']}/restore", headers=erin)).status == 404
    detail = (await (await api.get(f"/api/boards/{b}", headers=alice["headers"])).json())["board"]
    assert {(m["userId"], m["role"]) for m in detail["members"]} == {
        (alice["id"], "owner"), (world["erin"]["id"], "editor"), (world["vic"]["id"], "viewer")}


async def test_removed_member_loses_access_at_once(api, alice, world):
    b = world["board"]
    assert (await api.delete(f"/api/boards/{b}/members/{world['vic']['id']}", headers=alice["headers"])).status == 204
    assert (await api.get(f"/api/boards/{b}", headers=world["vic"]["headers"])).status == 404
    assert (await api.get(f"/api/boards/{b}/snapshot", headers=world["vic"]["headers"])).status == 404


async def test_unauthenticated_calls_are_401(api, alice, world):
    for method, path, body in owner_only_calls(world, alice["id"]):
        resp = await _call(api, method, path, body, {})
        assert resp.status == 401, (method, path)
    for path in ("/api/boards", "/api/notebooks", "/api/usage", "/api/subscription", "/api/notifications",
                 "/api/planner/tasks"):
        assert (await api.get(path)).status == 401, path


async def _assert_untouched(api, db, alice, w):
    h = alice["headers"]
    board = (await (await api.get(f"/api/boards/{w['board']}", headers=h)).json())["board"]
    assert board["title"] == "A" and len(board["members"]) == 3
    assert (await api.get(f"/api/notebooks/{w['notebook']}", headers=h)).status == 200
    assert (await api.get(f"/api/notebooks/{w['notebook']}/sources/{w['source']}", headers=h)).status == 200
    task = (await (await api.get(f"/api/planner/tasks/{w['task']}", headers=h)).json())["task"]
    assert task["done"] is False
    notes = (await (await api.get("/api/notifications", headers=h)).json())
    assert notes["unread"] == 1
    trash = (await (await api.get("/api/boards/trash", headers=h)).json())["boards"]
    assert [t["id"] for t in trash] == [w["binned"]]
    assert (await db["boards"].count_documents({"owner_id": alice["id"]})) == 2
