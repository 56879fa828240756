"""Whole-database copies: dump to files, load from files, copy from another MongoDB-wire server.

These work on every collection as opaque documents, so they need no knowledge of the schema and
serve `collabry backup`/`restore` and `collabry import-database` (moving a FerretDB 1.x or MongoDB
install onto this appliance's database). Writes are upserts by `_id`, so a copy interrupted half
way is finished by running it again.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import bson
from pymongo import ReplaceOne

from .client import Database

BATCH = 500


def is_application_collection(name: str) -> bool:
    return not name.startswith("system.")


async def collection_names(db: Database) -> list[str]:
    return sorted(n for n in await db.list_collection_names() if is_application_collection(n))


async def count(db: Database, collection: str) -> int:
    return int(await db[collection].count_documents({}))


async def documents(db: Database, collection: str) -> AsyncIterator[dict[str, Any]]:
    # Ordered by _id so that an interrupted copy and its rerun see the same sequence.
    async for doc in db[collection].find({}).sort("_id", 1):
        yield doc


async def upsert_all(db: Database, collection: str, docs: Iterable[dict[str, Any]]) -> int:
    """Write ``docs`` by `_id` (insert or replace): idempotent, whatever was there before."""
    ops = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs]
    if not ops:
        return 0
    await db[collection].bulk_write(ops, ordered=False)
    return len(ops)


async def drop(db: Database, collection: str) -> None:
    await db.drop_collection(collection)


async def dump_collection(db: Database, collection: str, path: Path) -> int:
    """One gzip'd file of concatenated BSON documents."""
    written = 0
    with gzip.open(path, "wb") as out:
        async for doc in documents(db, collection):
            out.write(bson.encode(doc))
            written += 1
    return written


def read_dump(path: Path) -> list[dict[str, Any]]:
    return bson.decode_all(gzip.decompress(path.read_bytes()))


async def load_collection(db: Database, collection: str, docs: list[dict[str, Any]]) -> int:
    loaded = 0
    for start in range(0, len(docs), BATCH):
        loaded += await upsert_all(db, collection, docs[start : start + BATCH])
    return loaded


@dataclass
class Progress:
    """A one-line progress bar on stderr (a line per 10 % when stderr is not a terminal)."""

    label: str
    total: int
    stream: IO[str] = sys.stderr
    done: int = 0
    _last_decile: int = -1

    def advance(self, n: int) -> None:
        self.done += n
        fraction = self.done / self.total if self.total else 1.0
        width = 30
        bar = "#" * int(fraction * width) + "-" * (width - int(fraction * width))
        line = f"{self.label:<24} [{bar}] {self.done}/{self.total}"
        if self.stream.isatty():
            self.stream.write("\r" + line)
            if self.done >= self.total:
                self.stream.write("\n")
        elif int(fraction * 10) != self._last_decile or self.done >= self.total:
            self._last_decile = int(fraction * 10)
            self.stream.write(line + "\n")
        self.stream.flush()


async def copy_database(
    source: Database, target: Database, *, stream: IO[str] = sys.stderr
) -> dict[str, tuple[int, int]]:
    """Copy every collection of ``source`` into ``target``; answer {collection: (source, target)}
    document counts read after the copy."""
    counts: dict[str, tuple[int, int]] = {}
    for name in await collection_names(source):
        progress = Progress(name, await count(source, name), stream)
        batch: list[dict[str, Any]] = []
        async for doc in documents(source, name):
            batch.append(doc)
            if len(batch) >= BATCH:
                progress.advance(await upsert_all(target, name, batch))
                batch = []
        progress.advance(await upsert_all(target, name, batch))
        counts[name] = (await count(source, name), await count(target, name))
    return counts
