"""`collabry index rebuild [--user ID]` and `collabry index verify`: the FAISS caches on this host.

``rebuild`` re-creates each user's snapshot in ``$COLLABRY_STATE_DIR/indexes`` from the database;
vectors made by another embedding model are re-embedded from the stored chunk text first (the
database is the source of truth, the snapshots are caches). ``verify`` checks every snapshot's
checksum and compares it with the database; it exits 1 when something needs a rebuild.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from ..config import Settings
from .bootstrap import settings_for
from .types import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("index", help="FAISS index caches (snapshots in the state directory)")
    isub = p.add_subparsers(dest="index_command", required=True)
    r = isub.add_parser("rebuild", help="rebuild snapshots from the database, re-embedding other models' vectors")
    r.add_argument("--user", help="only this user id")
    r.set_defaults(func=cmd_rebuild)
    v = isub.add_parser("verify", help="check snapshots against the database; exit 1 if any needs a rebuild")
    v.set_defaults(func=cmd_verify)


def _settings() -> Settings:
    return settings_for("admin")


def cmd_rebuild(args: argparse.Namespace) -> int:
    return asyncio.run(_rebuild(_settings(), args.user))


def cmd_verify(args: argparse.Namespace) -> int:
    return asyncio.run(_verify(_settings()))


async def _rebuild(settings: Any, only_user: str | None) -> int:
    from ..cache.client import create_redis
    from ..cache.redis_keys import Keys
    from ..db.client import create_client
    from ..engine.embeddings import create_embedder
    from ..engine.index.heads import IndexHeads
    from ..engine.index.snapshot import snapshot_path, write_snapshot
    from ..engine.index.state import IndexLog
    from ..engine.index.store import build_from_database

    embedder = await asyncio.to_thread(create_embedder, settings)
    if getattr(embedder, "dim", 0) == 0:
        await asyncio.to_thread(embedder.probe)
    client = create_client(settings)
    # A rebuild commits to the users' logs: the engines' mirrored heads must follow (index.heads).
    redis = create_redis(settings)
    try:
        index_log = IndexLog(client[settings.database_name], IndexHeads(redis, Keys(settings.redis_prefix)))
        users = [only_user] if only_user else await index_log.users()
        print(f"rebuilding {len(users)} user index(es) with {embedder.model} ({embedder.dim} dims)", flush=True)
        for n, user_id in enumerate(users, 1):
            started = time.perf_counter()
            state = await index_log.state(user_id)
            if state.model and (state.model != embedder.model or state.dim != embedder.dim):
                await _reembed(index_log, embedder, state, prefix=f"[{n}/{len(users)}] {user_id}")
                await index_log.commit(user_id, "reset", "", model=embedder.model, dim=embedder.dim)
                state = await index_log.state(user_id)
            idx = await build_from_database(index_log, state, embedder.model, embedder.dim)
            path = snapshot_path(settings.state_dir, user_id)
            size = await asyncio.to_thread(write_snapshot, path, idx.snapshot_data())
            print(
                f"[{n}/{len(users)}] {user_id}: {idx.ntotal} vectors from {len(state.sources)} sources, "
                f"seq {idx.seq}, {size / 2**20:.1f} MiB, {time.perf_counter() - started:.1f}s -> {path}",
                flush=True,
            )
    finally:
        await client.close()
        await redis.aclose()
    return 0


async def _reembed(index_log: Any, embedder: Any, state: Any, *, prefix: str) -> None:
    import numpy as np

    chunks = index_log.chunks
    sources = list(state.sources)
    total = await chunks.count_of_sources(state.user_id, sources)
    print(f"{prefix}: re-embedding {total} chunks ({state.model} -> {embedder.model})", flush=True)
    done = 0
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        nonlocal done
        vectors = await asyncio.to_thread(embedder.embed, [d["text"] for d in batch])
        await chunks.set_vectors(
            [(d["_id"], vectors[i].astype(np.float32).tobytes()) for i, d in enumerate(batch)],
            embedder.model, embedder.dim,
        )
        done += len(batch)
        print(f"{prefix}: {done}/{total}", flush=True)
        batch.clear()

    async for doc in chunks.texts_of_sources(state.user_id, sources):
        batch.append(doc)
        if len(batch) >= 256:
            await flush()
    if batch:
        await flush()


async def _verify(settings: Any) -> int:
    from ..db.client import create_client
    from ..engine.index.snapshot import SnapshotError, read_snapshot, snapshot_dir, snapshot_path
    from ..engine.index.state import IndexLog

    client = create_client(settings)
    problems = 0
    try:
        index_log = IndexLog(client[settings.database_name])
        users = await index_log.users()
        known = set()
        for user_id in users:
            state = await index_log.state(user_id)
            path = snapshot_path(settings.state_dir, user_id)
            known.add(path.name)
            counts = {
                sid: await index_log.chunks.count_of_ingestion(user_id, sid, ingest)
                for sid, ingest in state.sources.items()
            }
            models = await index_log.chunks.models_of_sources(user_id, list(state.sources))
            if len(models) > 1:
                print(
                    f"BAD   {user_id}: vectors of several models in the database {models}; run `collabry index "
                    f"rebuild --user {user_id}`"
                )
                problems += 1
                continue
            if not path.exists():
                print(
                    f"MISSING {user_id}: no snapshot (loaded from the database on first use), "
                    f"{sum(counts.values())} vectors"
                )
                continue
            try:
                data = await asyncio.to_thread(read_snapshot, path)
            except SnapshotError as exc:
                print(f"BAD   {user_id}: {exc}; run `collabry index rebuild --user {user_id}`")
                problems += 1
                continue
            header = data.header
            if header["model"] != state.model or int(header["dim"]) != state.dim:
                print(
                    f"BAD   {user_id}: snapshot model {header['model']} ({header['dim']}) differs from the "
                    f"database's {state.model} ({state.dim}); run `collabry index rebuild --user {user_id}`"
                )
                problems += 1
                continue
            if int(header["seq"]) < state.seq:
                print(
                    f"BEHIND {user_id}: snapshot at seq {header['seq']}, database at {state.seq} "
                    "(caught up on next load)"
                )
                continue
            snap_sources = {name: ingest for name, ingest in header["sources"] if ingest}
            rows = len(data.row_vid)
            if snap_sources != state.sources or rows != sum(counts.values()):
                print(
                    f"BAD   {user_id}: snapshot holds {rows} vectors of {len(snap_sources)} sources, database "
                    f"{sum(counts.values())} of {len(state.sources)}; run `collabry index rebuild --user {user_id}`"
                )
                problems += 1
                continue
            print(f"OK    {user_id}: {rows} vectors, seq {state.seq}")
        directory = snapshot_dir(settings.state_dir)
        if directory.exists():
            for path in sorted(directory.glob("*.idx")):
                if path.name not in known:
                    print(f"STRAY {path}: no such user in the database (safe to delete)")
    finally:
        await client.close()
    print(f"{problems} problem(s)")
    return 1 if problems else 0
