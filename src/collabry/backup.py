"""`collabry backup DIR` / `collabry restore DIR`: the database and the uploaded files.

A backup holds everything that cannot be rebuilt: every collection (a logical dump, one gzip'd file
of BSON documents each, readable by any MongoDB-wire server whatever its storage) and the uploads
folder (one tar.gz). FAISS snapshots, Redis streams and limiter state are rebuilt from the
database (`collabry index rebuild`). A manifest records counts and SHA-256 sums, so a restore
refuses a damaged backup before touching anything.

`collabry import-database` copies a whole other MongoDB-wire database (a FerretDB 1.x install, a
MongoDB) into this one, with the same upsert-by-`_id` writes, so it can be rerun.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from .config import Settings
from .db import transfer
from .db.client import create_client, utcnow
from .db.migrations import migrate
from .domain.sources import uploads_dir

MANIFEST = "manifest.json"
UPLOADS_ARCHIVE = "uploads.tar.gz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _archive_uploads(source: Path, archive: Path) -> int:
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else []
    with tarfile.open(archive, "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(source)))
    return len(files)


def _extract_uploads(archive: Path, target: Path) -> int:
    """Regular files only, each inside ``target``, without special mode bits: tarfile's "data"
    filter, done here because Python before 3.11.4 (Debian 12's 3.11.2) has no extraction filters."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    count = 0
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.isfile():
                continue
            dest = (root / member.name).resolve()
            if member.name.startswith("/") or dest == root or not dest.is_relative_to(root):
                raise ValueError(f"{archive.name}: {member.name!r} is outside the uploads folder")
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None  # a regular file
            with src, dest.open("wb") as out:
                shutil.copyfileobj(src, out)
            dest.chmod(member.mode & 0o755)
            count += 1
    return count


async def backup(settings: Settings, target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a one-shot CLI, nothing else on this loop
    manifest: dict[str, Any] = {
        "format": 2,
        "created_at": utcnow().isoformat(),
        "database": settings.database_name,
        "collections": {},
    }
    client = create_client(settings)
    try:
        db = client[settings.database_name]
        for name in await transfer.collection_names(db):
            path = target / f"{name}.bson.gz"
            count = await transfer.dump_collection(db, name, path)
            manifest["collections"][name] = {"documents": count, "sha256": _sha256(path)}
            print(f"{name}: {count} documents", file=sys.stderr)
    finally:
        await client.close()
    files = _archive_uploads(uploads_dir(settings), target / UPLOADS_ARCHIVE)
    manifest["uploads"] = {"files": files, "sha256": _sha256(target / UPLOADS_ARCHIVE)}
    print(f"uploads: {files} files", file=sys.stderr)
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return 0


def _verify(source: Path, manifest: dict[str, Any]) -> str | None:
    for name, entry in manifest["collections"].items():
        if _sha256(source / f"{name}.bson.gz") != entry["sha256"]:
            return f"{name}.bson.gz"
    uploads = manifest.get("uploads")
    if uploads and _sha256(source / UPLOADS_ARCHIVE) != uploads["sha256"]:
        return UPLOADS_ARCHIVE
    return None


async def restore(settings: Settings, source: Path, *, drop: bool) -> int:
    manifest = json.loads((source / MANIFEST).read_text())
    damaged = _verify(source, manifest)
    if damaged:
        print(f"collabry: {damaged} does not match the manifest; nothing restored", file=sys.stderr)
        return 1
    client = create_client(settings)
    try:
        db = client[settings.database_name]
        clash = set(await transfer.collection_names(db)) & set(manifest["collections"])
        if clash and not drop:
            print(f"collabry: collections exist ({', '.join(sorted(clash))}); use --drop to replace", file=sys.stderr)
            return 1
        for name, entry in manifest["collections"].items():
            if drop:
                await transfer.drop(db, name)
            docs = transfer.read_dump(source / f"{name}.bson.gz")
            await transfer.load_collection(db, name, docs)
            if len(docs) != entry["documents"]:
                print(f"collabry: {name}: restored {len(docs)} of {entry['documents']}", file=sys.stderr)
                return 1
            print(f"{name}: {len(docs)} documents", file=sys.stderr)
        await migrate(db)
    finally:
        await client.close()
    if "uploads" in manifest:
        target = uploads_dir(settings)
        if drop and target.exists():
            shutil.rmtree(target)
        files = _extract_uploads(source / UPLOADS_ARCHIVE, target)
        print(f"uploads: {files} files", file=sys.stderr)
    return 0


async def import_database(settings: Settings, source_uri: str, source_name: str | None) -> int:
    """Copy every collection of another MongoDB-wire database into this one, then check counts."""
    source_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        source_uri, tz_aware=True, serverSelectionTimeoutMS=10_000, appname="collabry-import"
    )
    client = create_client(settings)
    try:
        source_db = source_client[source_name or settings.database_name]
        counts = await transfer.copy_database(source_db, client[settings.database_name])
        await migrate(client[settings.database_name])
    finally:
        await client.close()
        await source_client.close()
    print(f"{'collection':<24} {'source':>10} {'here':>10}", file=sys.stderr)
    mismatched = []
    for name, (in_source, here) in counts.items():
        flag = "" if in_source == here else "  MISMATCH"
        print(f"{name:<24} {in_source:>10} {here:>10}{flag}", file=sys.stderr)
        if flag:
            mismatched.append(name)
    if mismatched:
        print(f"collabry: counts differ for {', '.join(mismatched)}", file=sys.stderr)
        return 1
    print(f"imported {len(counts)} collections; counts match", file=sys.stderr)
    return 0
