"""My account, taken away: ``GET /api/account/export`` hands a user everything they own, and
``DELETE /api/account`` erases it, through a real gateway app in front of two engine processes.

The erasure test builds an account with every kind of data (an uploaded file and a pasted source,
an indexed and snapshotted index, a chat, a planner task, boards alone, shared and of others,
a subscription's invoice) and then searches the whole database, the uploads folder and both
engines' snapshot folders for the user's id and email. An engine that is down during the request
leaves the erasure to the worker, which finishes it once the engine is back.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pycrdt
import pytest

from collabry.config import load_settings
from collabry.engine.index.snapshot import snapshot_dir, snapshot_path
from collabry.engine_client import rendezvous
from collabry.realtime.board_docs import append_update
from tests.integration.helpers import PASSWORD, login, user_with_token
from tests.support.engine_fixtures import EngineHandle
from tests.support.eventually import eventually
from tests.support.fake_openai import Reply

from .test_gateway_ai import notebook_with_source
from .test_gateway_engine_replicas import read_until_end

pytestmark = pytest.mark.slow

UPLOAD = b"# Cells\n\nMitochondria make ATP for the cell.\n" * 20


@pytest.fixture
def engines(start_engine: Callable[..., EngineHandle]) -> tuple[EngineHandle, EngineHandle]:
    return start_engine(name="engine-a"), start_engine(name="engine-b")


@pytest.fixture
def gateway_env(engine_env: dict[str, str], engines: tuple[EngineHandle, ...]) -> dict[str, str]:
    return {**engine_env, "COLLABRY_ENGINE_URL": ",".join(e.url for e in engines)}


@pytest.fixture
async def api(aiohttp_client: Callable[..., Any], gateway_env: dict[str, str]) -> Any:
    from collabry.gateway.app import create_app

    return await aiohttp_client(await create_app(load_settings(gateway_env, require=("jwt-secret",))))


def uploads(env: dict[str, str]) -> Path:
    return Path(env["COLLABRY_STATE_DIR"]) / "uploads"


async def upload(api: Any, user: dict[str, Any], notebook: str) -> str:
    form = aiohttp.FormData()
    form.add_field("title", "Cells")
    form.add_field("file", UPLOAD, filename="cells.md", content_type="text/markdown")
    resp = await api.post(f"/api/notebooks/{notebook}/sources", data=form, headers=user["headers"])
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["source"]["id"])


async def board(api: Any, owner: dict[str, Any], title: str, *, member: dict[str, Any] | None = None) -> str:
    resp = await api.post("/api/boards", json={"title": title}, headers=owner["headers"])
    assert resp.status == 201, await resp.text()
    board_id = str((await resp.json())["board"]["id"])
    if member is not None:
        resp = await api.post(
            f"/api/boards/{board_id}/members", json={"email": member["email"], "role": "editor"},
            headers=owner["headers"],
        )  # fmt: skip
        assert resp.status == 201, await resp.text()
    return board_id


async def edit(db: Any, board_id: str, user: dict[str, Any], text: str) -> None:
    """A board edit as the Socket.IO handler stores it (the content is the shared work, which stays
    with a board that others keep; only the edit's attribution goes)."""
    doc = pycrdt.Doc()
    doc["notes"] = notes = pycrdt.Map()
    notes[user["tag"]] = text
    await append_update(db, board_id, doc.get_update(), user_id=user["id"])


async def full_account(api: Any, db: Any, engines: tuple[EngineHandle, ...], other: dict[str, Any]) -> dict[str, Any]:
    """A user with data of every kind; ``other`` shares boards with them."""
    user = {**await user_with_token(api, "leaving"), "tag": "leaving"}
    notebook = await notebook_with_source(api, user)  # a pasted source, indexed by the user's engine
    file_source = await upload(api, user, notebook)
    home = next(e for e in engines if e.url == rendezvous([e.url for e in engines], user["id"])[0])
    home.fake_llm.push(Reply(text="Plants turn light into sugar."))
    resp = await api.post(
        "/api/ai/chat", json={"message": "What is photosynthesis?", "notebookId": notebook}, headers=user["headers"]
    )
    assert resp.status == 200, await resp.text()
    assert (await read_until_end(resp))[-1]["event"] == "done"
    resp = await api.post(
        "/api/planner/tasks", json={"title": "Revise cells", "dueAt": "2030-01-01T09:00:00Z"}, headers=user["headers"]
    )
    assert resp.status == 201, await resp.text()
    alone = await board(api, user, "Only mine")
    shared = await board(api, user, "Ours", member=other)
    theirs = await board(api, other, "Theirs", member=user)
    for board_id in (alone, shared, theirs):
        await edit(db, board_id, user, "written by the leaving user")
    await edit(db, shared, other, "written by the one who stays")

    async def indexed_and_snapshotted() -> bool:
        # read where the engine writes, not through the API: polling it would spend the client
        # address's request budget
        statuses = {s["status"] async for s in db["sources"].find({"notebook_id": notebook})}
        return statuses == {"ready"} and snapshot_path(home.state_dir, user["id"]).exists()

    await eventually(indexed_and_snapshotted, timeout=60, what="the sources indexed and snapshotted")
    return {**user, "notebook": notebook, "file_source": file_source, "home": home,
            "boards": {"alone": alone, "shared": shared, "theirs": theirs}}  # fmt: skip


async def traces(db: Any, env: dict[str, str], engines: tuple[EngineHandle, ...], user: dict[str, Any]) -> list[str]:
    """Every place the user's id or email still appears: documents, upload files, snapshot files."""
    marks = (user["id"], user["email"])
    found = []
    for name in await db.list_collection_names():
        async for doc in db[name].find():
            text = json.dumps(doc, default=str)
            if any(mark in text for mark in marks):
                found.append(f"{name}: {text[:200]}")
    for path in uploads(env).iterdir() if uploads(env).exists() else ():
        if path.name == user["file_name"] or user["id"] in path.name:
            found.append(f"upload {path.name}")
    for engine in engines:
        directory = snapshot_dir(engine.state_dir)
        for path in directory.iterdir() if directory.exists() else ():
            if user["id"] in path.name or any(mark.encode() in path.read_bytes() for mark in marks):
                found.append(f"snapshot {path}")
    return found


async def stored_file_name(db: Any, source_id: str) -> str:
    return str((await db["sources"].find_one({"_id": source_id}))["file"])


async def test_the_export_holds_everything_the_user_owns_and_nothing_of_others(
    api: Any, db: Any, engines: tuple[EngineHandle, EngineHandle]
) -> None:
    other = {**await user_with_token(api, "other"), "tag": "other"}
    user = await full_account(api, db, engines, other)
    resp = await api.get("/api/account/export", headers=user["headers"])
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="collabry-export-')
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    account = json.loads(archive.read("account.json"))
    collections = account["collections"]
    assert [u["email"] for u in collections["users"]] == [user["email"]]
    assert "password_hash" not in archive.read("account.json").decode()
    assert [n["_id"] for n in collections["notebooks"]] == [user["notebook"]]
    assert {s["title"] for s in collections["sources"]} == {"Photosynthesis", "Cells"}
    assert all("file" not in s for s in collections["sources"])
    assert [m["role"] for m in collections["ai_messages"]] == ["user", "assistant"]
    assert collections["ai_messages"][1]["content"] == "Plants turn light into sugar."
    assert [t["title"] for t in collections["planner_tasks"]] == ["Revise cells"]
    assert {b["_id"] for b in collections["boards"]} == {user["boards"]["alone"], user["boards"]["shared"]}
    assert [m["board_id"] for m in collections["board_members"]] == [user["boards"]["theirs"]]
    # the uploaded file as it was sent, and the owned boards' content as Yjs updates
    assert archive.read(f"files/{user['file_source']}/Cells") == UPLOAD
    restored = pycrdt.Doc()
    restored.apply_update(archive.read(f"boards/{user['boards']['shared']}.yjs"))
    notes = restored.get("notes", type=pycrdt.Map)
    assert dict(notes) == {"leaving": "written by the leaving user", "other": "written by the one who stays"}
    assert f"boards/{user['boards']['theirs']}.yjs" not in archive.namelist()

    # another user's export has none of it
    theirs = zipfile.ZipFile(io.BytesIO(await (await api.get("/api/account/export", headers=other["headers"])).read()))
    other_text = theirs.read("account.json").decode()
    assert user["email"] not in other_text and user["notebook"] not in other_text
    assert (await api.get("/api/account/export")).status == 401


async def test_deleting_the_account_leaves_nothing_of_it_and_shared_boards_to_their_members(
    api: Any, db: Any, engines: tuple[EngineHandle, EngineHandle], gateway_env: dict[str, str]
) -> None:
    other = {**await user_with_token(api, "other"), "tag": "other"}
    user = await full_account(api, db, engines, other)
    user["file_name"] = await stored_file_name(db, user["file_source"])
    assert (uploads(gateway_env) / user["file_name"]).exists()
    await db["invoices"].insert_one({"_id": "inv-1", "user_id": user["id"], "amount": 500, "currency": "EUR"})
    elsewhere = await login(api, user["email"])

    for body, status, code in (
        ({"password": "not my password"}, 403, "invalid_credentials"),
        ({}, 400, "invalid_request"),
    ):
        resp = await api.delete("/api/account", json=body, headers=user["headers"])
        assert resp.status == status and (await resp.json())["error"]["code"] == code, await resp.text()
    assert (await api.delete("/api/account", json={"password": PASSWORD})).status == 401
    assert await traces(db, gateway_env, engines, user)  # all still there

    resp = await api.delete("/api/account", json={"password": PASSWORD}, headers=user["headers"])
    assert resp.status == 200 and await resp.json() == {"status": "deleted"}, await resp.text()

    assert await traces(db, gateway_env, engines, user) == []
    # every session is over, and the email and password sign in nowhere
    for headers in (user["headers"], {"Authorization": f"Bearer {elsewhere['accessToken']}"}):
        assert (await api.get("/api/auth/me", headers=headers)).status == 401
    assert (await api.post("/api/auth/refresh", json={"refreshToken": elsewhere["refreshToken"]})).status == 401
    resp = await api.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert resp.status == 401
    # the shared board is the other member's now, with both people's content; the lone one is gone
    listed = {b["id"]: b for b in (await (await api.get("/api/boards", headers=other["headers"])).json())["boards"]}
    assert set(listed) == {user["boards"]["shared"], user["boards"]["theirs"]}
    assert (await db["boards"].find_one({"_id": user["boards"]["shared"]}))["owner_id"] == other["id"]
    assert await db["board_updates"].count_documents({"board_id": user["boards"]["shared"]}) == 2
    assert await db["boards"].find_one({"_id": user["boards"]["alone"]}) is None
    assert await db["board_updates"].count_documents({"board_id": user["boards"]["alone"]}) == 0
    # the invoice stays for the books, without the person
    assert (await db["invoices"].find_one({"_id": "inv-1"}))["amount"] == 500
    # the other user is untouched and the address can register again
    assert (await api.get("/api/auth/me", headers=other["headers"])).status == 200
    resp = await api.post("/api/auth/register", json={"email": user["email"], "password": PASSWORD, "name": "New"})
    assert resp.status == 201, await resp.text()


async def test_an_engine_down_during_the_deletion_is_cleaned_by_the_worker_once_back(
    api: Any, db: Any, engines: tuple[EngineHandle, EngineHandle], gateway_env: dict[str, str],
    start_engine: Callable[..., EngineHandle],
) -> None:
    other = {**await user_with_token(api, "other"), "tag": "other"}
    user = await full_account(api, db, engines, other)
    user["file_name"] = await stored_file_name(db, user["file_source"])
    home = user["home"]
    home.process.send(signal.SIGKILL)
    await asyncio.to_thread(home.process.proc.wait, 10)  # type: ignore[union-attr]

    resp = await api.delete("/api/account", json={"password": PASSWORD}, headers=user["headers"])
    assert resp.status == 202 and await resp.json() == {"status": "erasing"}, await resp.text()
    left = await traces(db, gateway_env, engines, user)
    # the account and its documents are gone; the dead engine's snapshot and the erasure record stay
    assert sorted(t.split(":")[0].split(" ")[0] for t in left) == ["account_erasures", "snapshot"], left
    assert (await api.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})).status == 401

    start_engine(name="engine-back", state_dir=home.state_dir, port=home.port)
    worker = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "collabry.cli", "worker", "run", "account_erasure", "--json"],
        env={**os.environ, **gateway_env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert await traces(db, gateway_env, engines, user) == []


async def test_an_answer_streaming_during_the_deletion_writes_nothing_after_it(
    api: Any, db: Any, engines: tuple[EngineHandle, EngineHandle], gateway_env: dict[str, str]
) -> None:
    user = {**await user_with_token(api, "talking"), "file_name": "-"}
    notebook = await notebook_with_source(api, user)
    home = next(e for e in engines if e.url == rendezvous([e.url for e in engines], user["id"])[0])
    home.fake_llm.push(Reply(text="slowly " * 300, delay=0.05))
    resp = await api.post(
        "/api/ai/chat", json={"message": "Tell me everything", "notebookId": notebook}, headers=user["headers"]
    )
    assert resp.status == 200, await resp.text()
    first_token = asyncio.Event()
    reading = asyncio.create_task(read_until_end(resp, on_token=first_token.set))
    await first_token.wait()

    deleted = await api.delete("/api/account", json={"password": PASSWORD}, headers=user["headers"])
    assert deleted.status == 200 and await deleted.json() == {"status": "deleted"}, await deleted.text()
    events = await reading
    assert events[-1]["event"] in ("done", "error"), events[-1]  # the answer stopped, it did not run on
    assert await traces(db, gateway_env, engines, user) == []


async def ingestion_outcomes(engine: EngineHandle) -> float:
    """How many ingestions the engine has ended, whatever their outcome (its /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"{engine.url}/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("collabry_engine_ingestions_total{"))  # fmt: skip


async def test_an_ingestion_running_during_the_deletion_writes_nothing_after_it(
    api: Any, db: Any, engines: tuple[EngineHandle, EngineHandle], gateway_env: dict[str, str]
) -> None:
    user = await user_with_token(api, "uploading")
    notebook = await notebook_with_source(api, user)
    home = next(e for e in engines if e.url == rendezvous([e.url for e in engines], user["id"])[0])
    # Thousands of passages: the engine is still embedding them, batch after batch, when the
    # account goes.
    lines = [f"Paragraph {i}: the cell membrane controls what enters and leaves the cell.\n\n" for i in range(40_000)]
    form = aiohttp.FormData()
    form.add_field("title", "Long notes")
    form.add_field("file", "".join(lines).encode(), filename="long.md", content_type="text/markdown")
    resp = await api.post(f"/api/notebooks/{notebook}/sources", data=form, headers=user["headers"])
    assert resp.status == 202, await resp.text()
    source_id = (await resp.json())["source"]["id"]
    user["file_name"] = await stored_file_name(db, source_id)

    async def embedding_under_way() -> bool:
        source = await db["sources"].find_one({"_id": source_id})
        assert source["status"] == "processing", source  # still going: the file is large enough
        return await db["chunks"].count_documents({"source_id": source_id}) > 0

    await eventually(embedding_under_way, 60, "the first passages of the upload to be stored")
    ended = await ingestion_outcomes(home)

    deleted = await api.delete("/api/account", json={"password": PASSWORD}, headers=user["headers"])
    assert deleted.status == 200 and await deleted.json() == {"status": "deleted"}, await deleted.text()
    # Whether the engine stopped it or it found its source gone on its own, the ingestion ends...
    await eventually(lambda: _more(home, ended), 60, "the ingestion to end")
    # ...and nothing it wrote, before or after the erasure, is left.
    assert await traces(db, gateway_env, engines, user) == []


async def _more(engine: EngineHandle, than: float) -> bool:
    return await ingestion_outcomes(engine) > than
