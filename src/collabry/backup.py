"""`collabry backup DIR` / `collabry restore DIR`: a logical dump of the database.

The database is the only thing to back up: FAISS indexes, Redis streams and limiter state are
rebuilt from it (`collabry index rebuild`). Each collection becomes one gzip'd file of BSON
documents with a manifest of counts and SHA-256 sums, so a restore can refuse a damaged backup
before touching anything. Upload files under the state directory are copied by the operator's
file backup (docs/operations.md).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import bson

from .config import Settings
from .db.client import create_client, utcnow
from .db.migrations import migrate

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def backup(settings: Settings, target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a one-shot CLI, nothing else on this loop
    client = create_client(settings)
    manifest: dict[str, Any] = {
        "created_at": utcnow().isoformat(),
        "database": settings.database_name,
        "collections": {},
    }
    try:
        db = client[settings.database_name]
        for name in sorted(await db.list_collection_names()):
            path = target / f"{name}.bson.gz"
            count = 0
            with gzip.open(path, "wb") as out:
                async for doc in db[name].find({}):
                    out.write(bson.encode(doc))
                    count += 1
            manifest["collections"][name] = {"documents": count, "sha256": _sha256(path)}
            print(f"{name}: {count} documents", file=sys.stderr)
    finally:
        await client.close()
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return 0


async def restore(settings: Settings, source: Path, *, drop: bool) -> int:
    manifest = json.loads((source / MANIFEST).read_text())
    for name, entry in manifest["collections"].items():
        if _sha256(source / f"{name}.bson.gz") != entry["sha256"]:
            print(f"collabry: {name}.bson.gz does not match the manifest; nothing restored", file=sys.stderr)
            return 1
    client = create_client(settings)
    try:
        db = client[settings.database_name]
        existing = set(await db.list_collection_names())
        clash = existing & set(manifest["collections"])
        if clash and not drop:
            print(f"collabry: collections exist ({', '.join(sorted(clash))}); use --drop to replace", file=sys.stderr)
            return 1
        for name, entry in manifest["collections"].items():
            if drop:
                await db.drop_collection(name)
            docs = bson.decode_all(gzip.decompress((source / f"{name}.bson.gz").read_bytes()))
            for start in range(0, len(docs), 1000):
                await db[name].insert_many(docs[start : start + 1000], ordered=True)
            if len(docs) != entry["documents"]:
                print(f"collabry: {name}: restored {len(docs)} of {entry['documents']}", file=sys.stderr)
                return 1
            print(f"{name}: {len(docs)} documents", file=sys.stderr)
        await migrate(db)
    finally:
        await client.close()
    return 0
