"""Boards: CRUD, members and roles, plan limit, recycle bin and restore, snapshot."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pycrdt

from collabry.db.client import utcnow
from collabry.realtime.board_docs import append_update

from ..helpers import user_with_token


async def _board(api, user, title="Physics"):
    resp = await api.post("/api/boards", json={"title": title}, headers=user["headers"])
    assert resp.status == 201, await resp.text()
    return (await resp.json())["board"]


async def test_create_list_get_rename(api, alice):
    board = await _board(api, alice)
    assert board["role"] == "owner" and board["ownerId"] == alice["id"] and board["title"] == "Physics"
    # the trailing-slash form of the collection works too
    resp = await api.get("/api/boards/", headers=alice["headers"])
    assert [b["id"] for b in (await resp.json())["boards"]] == [board["id"]]
    resp = await api.patch(f"/api/boards/{board['id']}", json={"title": "  Chemistry "}, headers=alice["headers"])
    assert resp.status == 200 and (await resp.json())["board"]["title"] == "Chemistry"
    resp = await api.get(f"/api/boards/{board['id']}", headers=alice["headers"])
    detail = (await resp.json())["board"]
    assert detail["title"] == "Chemistry"
    assert detail["members"] == [{"userId": alice["id"], "name": "Test", "role": "owner"}]


async def test_bad_titles_and_unknown_fields_are_400(api, alice):
    for body in ({"title": ""}, {"title": "   "}, {"title": "x" * 201}, {}, {"title": "ok", "ownerId": "me"}):
        resp = await api.post("/api/boards", json=body, headers=alice["headers"])
        assert resp.status == 400, body
        assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_members_roles_and_listing(api, alice, bob):
    board = await _board(api, alice)
    resp = await api.post(f"/api/boards/{board['id']}/members", json={"email": bob["email"].upper(), "role": "viewer"},
                          headers=alice["headers"])
    assert resp.status == 201
    assert (await resp.json())["member"] == {"userId": bob["id"], "name": "Test", "role": "viewer"}
    listed = (await (await api.get("/api/boards", headers=bob["headers"])).json())["boards"]
    assert [(b["id"], b["role"]) for b in listed] == [(board["id"], "viewer")]
    # changing the role of an existing member answers 200
    resp = await api.post(f"/api/boards/{board['id']}/members", json={"email": bob["email"], "role": "editor"},
                          headers=alice["headers"])
    assert resp.status == 200 and (await resp.json())["member"]["role"] == "editor"
    # bob was told once, through the notification service
    notes = (await (await api.get("/api/notifications", headers=bob["headers"])).json())["notifications"]
    assert [n["type"] for n in notes] == ["board_shared"]
    # the owner cannot be added, unknown emails are 404
    resp = await api.post(f"/api/boards/{board['id']}/members", json={"email": alice["email"], "role": "viewer"},
                          headers=alice["headers"])
    assert resp.status == 409
    resp = await api.post(f"/api/boards/{board['id']}/members", json={"email": "nobody@example.com", "role": "viewer"},
                          headers=alice["headers"])
    assert resp.status == 404
    # a member may leave; the owner may not
    assert (await api.delete(f"/api/boards/{board['id']}/members/{bob['id']}", headers=bob["headers"])).status == 204
    assert (await api.get(f"/api/boards/{board['id']}", headers=bob["headers"])).status == 404
    resp = await api.delete(f"/api/boards/{board['id']}/members/{alice['id']}", headers=alice["headers"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "owner_cannot_leave"


async def test_plan_limit_holds_under_concurrency(api, alice):
    # free plan in these tests: 3 boards
    results = await asyncio.gather(*[
        api.post("/api/boards", json={"title": f"b{i}"}, headers=alice["headers"]) for i in range(12)
    ])
    statuses = sorted(r.status for r in results)
    assert statuses == [201] * 3 + [403] * 9
    refused = next(r for r in results if r.status == 403)
    assert (await refused.json())["error"]["code"] == "plan_limit"
    listed = (await (await api.get("/api/boards", headers=alice["headers"])).json())["boards"]
    assert len(listed) == 3


async def test_recycle_bin_and_restore(api, alice, bob, db):
    board = await _board(api, alice)
    await api.post(f"/api/boards/{board['id']}/members", json={"email": bob["email"], "role": "editor"},
                   headers=alice["headers"])
    assert (await api.delete(f"/api/boards/{board['id']}", headers=alice["headers"])).status == 204
    # gone for everyone, in the owner's bin (the static path is not taken for an id)
    assert (await api.get(f"/api/boards/{board['id']}", headers=alice["headers"])).status == 404
    assert (await api.get(f"/api/boards/{board['id']}", headers=bob["headers"])).status == 404
    trash = (await (await api.get("/api/boards/trash", headers=alice["headers"])).json())["boards"]
    assert [b["id"] for b in trash] == [board["id"]]
    assert trash[0]["purgeAt"] > trash[0]["deletedAt"]
    assert (await (await api.get("/api/boards/trash", headers=bob["headers"])).json())["boards"] == []
    # deleting freed the slot: the plan's 3 boards can be created again
    for i in range(3):
        await _board(api, alice, f"n{i}")
    # so restoring now would exceed the plan
    resp = await api.post(f"/api/boards/{board['id']}/restore", headers=alice["headers"])
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "plan_limit"
    extra = (await (await api.get("/api/boards", headers=alice["headers"])).json())["boards"][0]
    assert (await api.delete(f"/api/boards/{extra['id']}", headers=alice["headers"])).status == 204
    # the editor cannot restore it; the owner can, and members come back with it
    assert (await api.post(f"/api/boards/{board['id']}/restore", headers=bob["headers"])).status == 404
    resp = await api.post(f"/api/boards/{board['id']}/restore", headers=alice["headers"])
    assert resp.status == 200 and (await resp.json())["board"]["id"] == board["id"]
    assert (await api.get(f"/api/boards/{board['id']}", headers=bob["headers"])).status == 200


async def test_restore_after_the_recycle_window_is_404(api, alice, db):
    board = await _board(api, alice)
    await api.delete(f"/api/boards/{board['id']}", headers=alice["headers"])
    await db["boards"].update_one({"_id": board["id"]}, {"$set": {"deleted_at": utcnow() - timedelta(days=31)}})
    assert (await (await api.get("/api/boards/trash", headers=alice["headers"])).json())["boards"] == []
    assert (await api.post(f"/api/boards/{board['id']}/restore", headers=alice["headers"])).status == 404


async def test_snapshot_is_the_stored_yjs_document(api, alice, bob, db):
    board = await _board(api, alice)
    empty = await api.get(f"/api/boards/{board['id']}/snapshot", headers=alice["headers"])
    assert empty.status == 200 and empty.content_type == "application/octet-stream"
    doc = pycrdt.Doc()
    doc.apply_update(await empty.read())
    assert str(doc.get("title", type=pycrdt.Text)) == ""
    # content written through the board store shows up in the snapshot
    author = pycrdt.Doc()
    author.get("title", type=pycrdt.Text).insert(0, "Kinematics")
    await append_update(db, board["id"], author.get_update(), user_id=alice["id"])
    resp = await api.get(f"/api/boards/{board['id']}/snapshot", headers=alice["headers"])
    copy = pycrdt.Doc()
    copy.apply_update(await resp.read())
    assert str(copy.get("title", type=pycrdt.Text)) == "Kinematics"
    assert (await api.get(f"/api/boards/{board['id']}/snapshot", headers=bob["headers"])).status == 404


async def test_archived_board_is_read_only(api, alice, db):
    board = await _board(api, alice)
    await db["boards"].update_one({"_id": board["id"]}, {"$set": {"archived_at": utcnow()}})
    resp = await api.patch(f"/api/boards/{board['id']}", json={"title": "x"}, headers=alice["headers"])
    assert resp.status == 403
    resp = await api.get(f"/api/boards/{board['id']}", headers=alice["headers"])
    assert (await resp.json())["board"]["archived"] is True


async def test_list_is_per_user(api, alice):
    carol = await user_with_token(api, "carol")
    await _board(api, alice)
    resp = await api.get("/api/boards", headers=carol["headers"])
    assert (await resp.json())["boards"] == []
