"""The cleanup job removes what has aged out, and only that; the recycle bin's sources leave with
their files, chunks and vectors (through the real engine)."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from collabry.cache.redis_keys import Keys
from collabry.cache.streams import StreamWriter
from collabry.db.client import new_id, utcnow
from collabry.devstack.components import free_port
from tests.support.eventually import eventually

from .seed import add_boards, add_user


async def test_cleanup_removes_only_what_has_expired(db, run_worker, settings):
    now = utcnow()
    user = await add_user(db)
    uid = user["_id"]
    await db["refresh_tokens"].insert_many([
        {"_id": "expired", "family_id": "f", "user_id": uid, "expires_at": now - timedelta(minutes=1)},
        {"_id": "valid", "family_id": "f", "user_id": uid, "expires_at": now + timedelta(days=1)},
    ])
    await db["notifications"].insert_many([
        {"_id": "old", "user_id": uid, "type": "x", "title": "t", "body": "", "read": True,
         "created_at": now - timedelta(days=91), "dedupe_key": "id:old"},
        {"_id": "recent", "user_id": uid, "type": "x", "title": "t", "body": "", "read": True,
         "created_at": now - timedelta(days=89), "dedupe_key": "id:recent"},
    ])
    await db["usage"].insert_many([
        {"_id": f"{uid}:old", "user_id": uid, "date": (now - timedelta(days=91)).strftime("%Y-%m-%d"), "kind": "ai"},
        {"_id": f"{uid}:new", "user_id": uid, "date": (now - timedelta(days=89)).strftime("%Y-%m-%d"), "kind": "ai"},
    ])
    gone_board, kept_board = await add_boards(db, uid, 2, now)
    await db["boards"].update_one({"_id": gone_board}, {"$set": {"deleted_at": now - timedelta(days=31)}})
    await db["boards"].update_one({"_id": kept_board}, {"$set": {"deleted_at": now - timedelta(days=29)}})
    await db["board_members"].insert_one({"_id": new_id(), "board_id": gone_board, "user_id": uid, "role": "editor"})
    await db["board_updates"].insert_one({"_id": new_id(), "board_id": gone_board, "update": b"\x00", "user_id": uid})
    await db["job_runs"].insert_one({"_id": "reminders:old", "job": "reminders", "slot": "old", "trigger": "schedule",
                                     "status": "done", "attempt": 1, "slot_at": now - timedelta(days=40),
                                     "started_at": now - timedelta(days=40), "lease_until": now - timedelta(days=40)})
    # A finished answer whose keys lost their expiry, and a running one, which cleanup leaves alone.
    redis = settings_redis(settings)
    finished = StreamWriter(redis, "finished-1", keys=Keys(settings.redis_prefix))
    await finished.start(user_id=uid, session_id="s", message_id="m")
    await finished.finish("done", {"finishReason": "stop", "usage": {}})
    keys = Keys(settings.redis_prefix)
    await redis.persist(keys.stream("finished-1"))
    await redis.persist(keys.stream_meta("finished-1"))
    running = StreamWriter(redis, "running-1", keys=Keys(settings.redis_prefix))
    await running.start(user_id=uid, session_id="s", message_id="m")

    result = run_worker("run", "cleanup", "--json")

    assert result.returncode == 0, result.stderr
    (line,) = result.lines("job_run")
    assert line["items"] == {"refresh_tokens": 1, "stream_buffers": 1, "notifications": 1, "boards": 1,
                             "notebooks": 0, "usage": 1, "job_runs": 1}
    assert [d["_id"] async for d in db["refresh_tokens"].find()] == ["valid"]
    assert [d["_id"] async for d in db["notifications"].find()] == ["recent"]
    assert [d["_id"] async for d in db["usage"].find()] == [f"{uid}:new"]
    assert [d["_id"] async for d in db["boards"].find()] == [kept_board]
    assert await db["board_members"].count_documents({"board_id": gone_board}) == 0
    assert await db["board_updates"].count_documents({"board_id": gone_board}) == 0
    assert await db["job_runs"].count_documents({"_id": "reminders:old"}) == 0
    for name in (keys.stream("finished-1"), keys.stream_meta("finished-1")):
        assert 0 < await redis.ttl(name) <= settings.stream_retention
    assert await redis.hget(keys.stream_meta("running-1"), "state") == b"running"
    await redis.aclose()


def settings_redis(settings):
    from collabry.cache.client import create_redis

    return create_redis(settings)


@pytest.mark.slow
async def test_recycle_bin_notebook_leaves_with_its_files_chunks_and_vectors(db, run_worker, spawn, settings, tmp_path):
    port = free_port()
    spawn("engine", "engine", "--port", str(port), port=port)
    now = utcnow()
    user = await add_user(db)
    uid, notebook_id, source_id = user["_id"], new_id(), new_id()
    uploads = settings.state_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / f"{source_id}.txt").write_text("Photosynthesis turns light into chemical energy. " * 20)
    await db["notebooks"].insert_one({"_id": notebook_id, "user_id": uid, "title": "Biology", "created_at": now,
                                      "updated_at": now, "deleted_at": None})
    await db["sources"].insert_one({"_id": source_id, "user_id": uid, "notebook_id": notebook_id, "title": "notes",
                                    "kind": "text", "content_type": "text/plain", "status": "processing", "chunks": 0,
                                    "error": None, "size": 1000, "file": f"{source_id}.txt", "created_at": now,
                                    "updated_at": now, "deleted_at": None})
    engine = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {settings.service_token}"}
    async with aiohttp.ClientSession() as http:
        text = (uploads / f"{source_id}.txt").read_text()
        resp = await http.post(f"{engine}/internal/sources/{source_id}/ingest-text", headers=headers,
                               json={"userId": uid, "notebookId": notebook_id, "text": text})
        assert resp.status == 202, await resp.text()

        async def ingested() -> bool:
            return bool((await db["sources"].find_one({"_id": source_id}))["status"] == "ready")

        await eventually(ingested, 60, "the ingestion to finish", interval=0.1)
        assert await db["chunks"].count_documents({"source_id": source_id}) > 0
        query = {"userId": uid, "query": "photosynthesis light energy"}
        resp = await http.post(f"{engine}/internal/retrieve", headers=headers, json=query)
        assert {r["sourceId"] for r in (await resp.json())["results"]} == {source_id}
        await db["notebooks"].update_one({"_id": notebook_id}, {"$set": {"deleted_at": now - timedelta(days=31)}})

        result = run_worker("run", "cleanup", extra_env={"COLLABRY_ENGINE_URL": engine})
        assert result.returncode == 0, result.stderr
        assert result.lines("job_run")[0]["items"]["notebooks"] == 1

        assert await db["notebooks"].count_documents({}) == 0
        assert await db["sources"].count_documents({}) == 0
        assert await db["chunks"].count_documents({}) == 0
        assert not (uploads / f"{source_id}.txt").exists()
        # The vectors left the index too: retrieval finds nothing of the purged source.
        resp = await http.post(f"{engine}/internal/retrieve", headers=headers, json=query)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["results"] == []
