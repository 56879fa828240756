"""The stale_streams job ends answers whose engine died; the uploads job deletes orphan files."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from collabry.cache.client import create_redis
from collabry.cache.redis_keys import Keys
from collabry.cache.streams import StreamReader, StreamWriter
from collabry.db.client import new_id, utcnow

from .conftest import schedules


async def test_stale_stream_gets_its_error_end_event_and_live_ones_are_left_alone(run_worker, settings):
    redis = create_redis(settings)
    keys = Keys(settings.redis_prefix)
    dead = StreamWriter(redis, "dead-1", keys=keys)
    await dead.start(user_id="u1", session_id="s", message_id="m")
    await dead.append("token", {"text": "Half an ans"})
    alive = StreamWriter(redis, "alive-1", keys=keys, heartbeat=0.1)
    await alive.start(user_id="u2", session_id="s", message_id="m")
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(stale_streams="* * * * *"), "COLLABRY_STREAM_STALE_AFTER": "1"}

    async with alive.heartbeating():
        await asyncio.sleep(1.2)  # the dead writer's heartbeat ages past the 1 s staleness limit
        result = await asyncio.to_thread(run_worker, "run-due", extra_env=env)

    assert result.returncode == 0, result.stderr
    assert result.lines("job_run")[0]["items"] == {"closed": 1}
    reader = StreamReader(redis, keys=keys)
    events = await reader.read("dead-1")
    assert [e.event for e in events] == ["meta", "token", "error"]
    assert events[-1].payload["code"] == "stream_interrupted"
    assert (await reader.meta("dead-1")).state == "error"
    assert (await reader.meta("alive-1")).state == "running"
    await alive.finish("done", {"finishReason": "stop", "usage": {}})
    await redis.aclose()


async def test_orphan_uploads_are_deleted_after_the_grace_period(db, run_worker, settings):
    uploads = settings.state_dir / "uploads"
    uploads.mkdir(parents=True)
    referenced, orphan, fresh_orphan, half_written = (uploads / n for n in (
        f"{new_id()}.pdf", f"{new_id()}.txt", f"{new_id()}.md", f".{new_id()}.pdf.tmp"))
    day_old = time.time() - 86400
    for path in (referenced, orphan, fresh_orphan, half_written):
        path.write_bytes(b"data")
    for path in (referenced, orphan, half_written):
        os.utime(path, (day_old, day_old))
    await db["sources"].insert_one({"_id": referenced.stem, "user_id": "u", "notebook_id": "n", "file": referenced.name,
                                    "created_at": utcnow(), "deleted_at": None})
    env = {"COLLABRY_WORKER_SCHEDULES": schedules(uploads="0 4 * * *")}

    result = run_worker("run-due", extra_env=env)

    assert result.returncode == 0, result.stderr
    assert result.lines("job_run")[0]["items"] == {"files": 2}
    assert sorted(p.name for p in uploads.iterdir()) == sorted([referenced.name, fresh_orphan.name])
    # Uploads are per host: the slot is claimed under this host's name.
    run = await db["job_runs"].find_one({})
    assert run["job"] == f"uploads@{socket.gethostname()}"
