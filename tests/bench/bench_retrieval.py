"""Retrieval top-10 for one user with 10,000 chunks: our search vs raw FAISS on the same index.

    .venv/bin/python tests/bench/bench_retrieval.py [--chunks 10000] [--repeat 300]

Rows (median per call):
- raw FAISS: ``IndexFlatIP.search`` on the user's index, nothing else;
- ours, whole user: ``UserIndex.search`` with every source allowed (what a chat without a notebook
  filter does): source bookkeeping + FAISS + mapping rows to chunk ids;
- ours, one notebook: the same with half the sources allowed, filtered *inside* the scan (bitmap
  selector), never after;
- ours + freshness check: ``IndexStore.search``, which checks the user's log head so replicas
  converge: as shipped, the head mirrored in Redis (``engine.index.heads``), its GET written before
  the scan and its answer read after it, the scan on the loop (an index this size is under
  ``INLINE_SEARCH_FLOATS``); the path a larger index takes (the scan in a thread, the GET
  overlapped with it); and, for comparison, the database read it replaced;
- full retrieve: ``Retriever.retrieve`` (embed the query with the local model, allowed sources
  from the database, search, read the passages back).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np
import uvloop
from engine_common import infra, timed, unit_rows  # type: ignore[import-not-found]
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from collabry.cache.redis_keys import Keys
from collabry.db.client import new_id, utcnow
from collabry.db.migrations import migrate


async def amedian(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    await fn()
    await fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return samples[len(samples) // 2]


async def amedian_given(prepare, fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median time of ``fn(await prepare())``, ``prepare`` not timed."""
    samples = []
    for _ in range(repeat + 2):
        given = await prepare()
        started = time.perf_counter()
        await fn(given)
        samples.append(time.perf_counter() - started)
    samples = sorted(samples[2:])
    return samples[len(samples) // 2]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)

    from collabry.config import Settings
    from collabry.engine.embeddings import create_embedder
    from collabry.engine.index.heads import IndexHeads
    from collabry.engine.index.state import IndexLog
    from collabry.engine.index.store import IndexStore
    from collabry.engine.retrieval import Retriever

    embedder = create_embedder(Settings())
    with infra() as env:
        client: AsyncMongoClient = AsyncMongoClient(env.mongo_uri, tz_aware=True)
        db = client["bench"]
        await migrate(db)
        redis = Redis.from_url(env.redis_url)
        log = IndexLog(db, IndexHeads(redis, Keys()))
        user = new_id()
        notebooks = [new_id(), new_id()]
        per_source = args.chunks // args.sources
        vectors = unit_rows(args.chunks)
        sources = []
        for s in range(args.sources):
            source, ingest = new_id(), new_id()
            notebook = notebooks[s % 2]
            await db.sources.insert_one(
                {
                    "_id": source,
                    "user_id": user,
                    "notebook_id": notebook,
                    "title": f"S{s}",
                    "status": "ready",
                    "deleted_at": None,
                    "created_at": utcnow(),
                }
            )
            first = await log.allocate(user, per_source)
            rows = vectors[s * per_source : (s + 1) * per_source]
            await db.chunks.insert_many(
                [
                    {
                        "_id": new_id(),
                        "user_id": user,
                        "notebook_id": notebook,
                        "source_id": source,
                        "ingest_id": ingest,
                        "seq": first + i,
                        "ord": i,
                        "text": f"chunk {i} of source {s}",
                        "vector": rows[i].tobytes(),
                        "model": embedder.model,
                        "dim": embedder.dim,
                    }
                    for i in range(per_source)
                ]
            )
            await log.commit(user, "add", source, ingest, model=embedder.model, dim=embedder.dim)
            sources.append((source, notebook))

        store = IndexStore(log, Path(env.root) / "state", model=embedder.model, dim=embedder.dim)
        idx = await store.current(user)
        db_store = IndexStore(IndexLog(db), Path(env.root) / "state-db", model=embedder.model, dim=embedder.dim)
        await db_store.current(user)
        thread_store = IndexStore(
            log, Path(env.root) / "state-thread", model=embedder.model, dim=embedder.dim, inline_search_floats=0
        )
        await thread_store.current(user)
        assert idx.ntotal == per_source * args.sources
        query = unit_rows(1, seed=7)
        everything = [s for s, _ in sources]
        one_notebook = [s for s, nb in sources if nb == notebooks[0]]
        flat = idx.index.index  # the same IndexFlatIP our search runs on

        raw = timed(lambda: flat.search(query, 10), args.repeat)
        ours_all = timed(lambda: idx.search(query[0], everything, 10), args.repeat)
        ours_nb = timed(lambda: idx.search(query[0], one_notebook, 10), args.repeat)
        # Interleaved in rounds, so the shared CPU's load hits all alike.
        raw_l, raw_given_l, given_l, head_l, with_check_l, thread_l, db_check_l = [], [], [], [], [], [], []

        async def raw_search(_head: object) -> None:
            flat.search(query, 10)

        for _ in range(3):
            raw_l.append(timed(lambda: flat.search(query, 10), args.repeat))
            # The head-in-hand row reads a head between calls (untimed): raw FAISS gets the same
            # work between its calls, so both scan an index that other work has partly evicted.
            raw_given_l.append(await amedian_given(lambda: store.head(user), raw_search, args.repeat))
            given_l.append(await amedian_given(
                lambda: store.head(user), lambda head: store.search(user, query[0], everything, 10, head=head),
                args.repeat,
            ))
            head_l.append(await amedian(lambda: store.head(user), args.repeat))
            with_check_l.append(await amedian(lambda: store.search(user, query[0], everything, 10), args.repeat))
            thread_l.append(await amedian(lambda: thread_store.search(user, query[0], everything, 10), args.repeat))
            db_check_l.append(await amedian(lambda: db_store.search(user, query[0], everything, 10), args.repeat))
        raw_round, raw_given = sorted(raw_l)[1], sorted(raw_given_l)[1]
        given, head_read = sorted(given_l)[1], sorted(head_l)[1]
        with_check, in_thread, db_check = sorted(with_check_l)[1], sorted(thread_l)[1], sorted(db_check_l)[1]

        async def run_blocking(fn, *a):  # type: ignore[no-untyped-def]
            return fn(*a)

        retriever = Retriever(db, embedder, store, run_blocking)
        full = await amedian(
            lambda: retriever.retrieve(user, "How do plants make sugar?", k=10), max(args.repeat // 5, 20)
        )

        print(f"user with {idx.ntotal} chunks in {args.sources} sources, top-10, median of {args.repeat} calls")
        print(f"{'call':<60} {'ms':>8} {'vs raw':>8}")
        rows_out = [  # (call, seconds, the raw time it is compared with: measured in the same way)
            ("raw FAISS IndexFlatIP.search", raw, raw),
            ("ours: UserIndex.search, whole user", ours_all, raw),
            ("ours: UserIndex.search, one notebook (50%)", ours_nb, raw),
            ("(interleaved rounds, median round:)", None, raw),
            ("raw FAISS IndexFlatIP.search", raw_round, raw_round),
            ("raw FAISS, a head read between calls (untimed)", raw_given, raw_given),
            ("ours + freshness check, head in hand (as Retriever)", given, raw_given),
            ("  the head read, overlapped with the query's embedding", head_read, raw_round),
            ("ours + freshness check, head read by the search", with_check, raw_round),
            ("  the same, scan in a thread (large index)", in_thread, raw_round),
            ("before: + database freshness check", db_check, raw_round),
            ("full retrieve (embed + DB + search + text)", full, raw_round),
        ]
        for name, seconds, base in rows_out:
            if seconds is None:
                print(name)
            else:
                print(f"{name:<60} {seconds * 1000:>8.3f} {seconds / base:>7.2f}x")
        # Same answers: the filtered path returns exactly the brute-force top 10 over the allowed rows.
        allowed_rows = np.isin(idx.row_source, [idx.source_number[s] for s in one_notebook])
        scores = vectors @ query[0]
        expected = set(np.argsort(-np.where(allowed_rows, scores, -np.inf))[:10].tolist())
        got = {int(np.flatnonzero(idx.row_vid == h.vid)[0]) for h in idx.search(query[0], one_notebook, 10)}
        print(f"filtered top-10 equals brute force over the notebook's rows: {got == expected}")
        await client.close()
        await redis.aclose()


if __name__ == "__main__":
    uvloop.run(main())  # the engine's event loop (collabry.lifecycle)
