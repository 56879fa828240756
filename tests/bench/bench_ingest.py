"""Ingestion throughput: chunks per second end to end vs the embedder alone on the same texts.

    .venv/bin/python tests/bench/bench_ingest.py [--paragraphs 300]

End to end = what the engine does for an upload: parse the file, chunk it, embed in batches, write
the chunks (text, metadata, vector) to FerretDB, commit to the index log, update the source, catch
up the user's loaded index. "Embedder alone" embeds exactly the same chunk texts in the same batch
size, with nothing else: the difference is the cost of everything around the model.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from engine_common import infra, synthetic_text  # type: ignore[import-not-found]
from pymongo import AsyncMongoClient

from collabry.config import Settings
from collabry.db.client import new_id, utcnow
from collabry.db.migrations import migrate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paragraphs", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    from collabry.engine.embeddings import create_embedder
    from collabry.engine.index.state import IndexLog
    from collabry.engine.index.store import IndexStore
    from collabry.engine.ingest.chunk import chunk_segments
    from collabry.engine.ingest.parse import parse_file
    from collabry.engine.ingest.pipeline import Ingestor

    settings = Settings()
    embedder = create_embedder(settings)
    with infra() as env:
        client: AsyncMongoClient = AsyncMongoClient(env.mongo_uri, tz_aware=True)
        db = client["bench"]
        await migrate(db)
        log = IndexLog(db)
        store = IndexStore(log, env.root / "state", model=embedder.model, dim=embedder.dim)

        async def run_blocking(fn, *a):  # type: ignore[no-untyped-def]
            return await asyncio.to_thread(fn, *a)

        ingestor = Ingestor(
            db,
            embedder,
            log,
            store,
            chunk_chars=settings.chunk_chars,
            chunk_overlap=settings.chunk_overlap,
            batch=settings.embed_batch,
            run_blocking=run_blocking,
        )
        path = Path(env.root) / "notes.txt"
        path.write_text(synthetic_text(args.paragraphs))
        texts = [c.text for c in chunk_segments(parse_file(path, "text"), settings.chunk_chars, settings.chunk_overlap)]
        print(
            f"{len(texts)} chunks from {path.stat().st_size / 1024:.0f} KiB of text, batch {settings.embed_batch}, "
            f"best of {args.rounds}"
        )

        user, notebook = new_id(), new_id()
        alone: list[float] = []
        end_to_end: list[float] = []
        # Alternate the two (and which goes first) so both see the same load on a shared machine.
        for round_ in range(args.rounds):
            for step in ("alone", "e2e") if round_ % 2 == 0 else ("e2e", "alone"):
                if step == "alone":
                    started = time.perf_counter()
                    for i in range(0, len(texts), settings.embed_batch):
                        await run_blocking(embedder.embed, texts[i : i + settings.embed_batch])
                    alone.append(time.perf_counter() - started)
                    continue
                source = new_id()
                await db.sources.insert_one(
                    {
                        "_id": source,
                        "user_id": user,
                        "notebook_id": notebook,
                        "title": "bench",
                        "status": "processing",
                        "deleted_at": None,
                        "created_at": utcnow(),
                    }
                )
                ingest_id = await ingestor.claim(source, user)
                started = time.perf_counter()
                await ingestor.run(source, user, notebook, ingest_id, path, "text")
                end_to_end.append(time.perf_counter() - started)
                doc = await db.sources.find_one({"_id": source})
                assert doc["status"] == "ready" and doc["chunks"] == len(texts), doc

        best_alone, best_e2e = min(alone), min(end_to_end)
        print(f"{'path':<34} {'s':>7} {'chunks/s':>9} {'vs embedder':>12}")
        print(f"{'embedder alone':<34} {best_alone:>7.2f} {len(texts) / best_alone:>9.1f} {1.0:>11.2f}x")
        print(
            f"{'end to end (parse..commit)':<34} {best_e2e:>7.2f} {len(texts) / best_e2e:>9.1f} "
            f"{best_alone / best_e2e:>11.2f}x"
        )
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
