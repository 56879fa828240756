"""Backup, restore and import through the CLI against the real database and uploads folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import MongoClient

from tests.support.eventually import eventually

from .helpers import login, register, user_with_token


@pytest.fixture
def settings(settings, engine):
    # Uploads are handed to a real engine process for ingestion.
    return settings.with_overrides(engine_url=engine.url)


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "collabry.cli", *args], env={**env, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, check=False, timeout=120)


def snapshot(mongo) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection, in `_id` order."""
    return {name: list(mongo[name].find({}).sort("_id", 1)) for name in sorted(mongo.list_collection_names())}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def upload_text(gateway, user, text: bytes) -> None:
    """Upload a text source and wait until the engine has ingested it (chunks written)."""
    resp = await gateway.post("/api/notebooks", json={"title": "Backed up"}, headers=user["headers"])
    assert resp.status == 201, await resp.text()
    notebook = (await resp.json())["notebook"]["id"]
    body = aiohttp.FormData()
    body.add_field("file", text, filename="notes.txt", content_type="text/plain")
    resp = await gateway.post(f"/api/notebooks/{notebook}/sources", data=body, headers=user["headers"])
    assert resp.status in (201, 202), await resp.text()
    source = (await resp.json())["source"]["id"]

    async def ready() -> bool:
        resp = await gateway.get(f"/api/notebooks/{notebook}/sources/{source}", headers=user["headers"])
        return (await resp.json())["source"]["status"] == "ready"

    await eventually(ready, timeout=60)


async def test_backup_wipe_restore_gives_back_every_document_and_file(gateway, env, settings, mongo, tmp_path):
    user = await user_with_token(gateway, "backup")
    await upload_text(gateway, user, b"Mitochondria make ATP.\n" * 20)
    uploads = settings.state_dir / "uploads"
    before_docs, before_files = snapshot(mongo), files(uploads)
    assert before_files and "sources" in before_docs and "users" in before_docs

    target = tmp_path / "backup"
    result = cli(env, "backup", str(target))
    assert result.returncode == 0, result.stderr
    assert (target / "manifest.json").exists() and (target / "uploads.tar.gz").exists()
    assert cli(env, "restore", str(target)).returncode == 1  # refuses to overwrite without --drop

    # Destroy: the whole database and the uploads folder.
    mongo.client.drop_database(mongo.name)
    shutil.rmtree(uploads)
    gone = await gateway.post("/api/auth/login", json={"email": user["email"], "password": user["password"]})
    assert gone.status == 401

    result = cli(env, "restore", "--drop", str(target))
    assert result.returncode == 0, result.stderr
    after_docs = snapshot(mongo)
    after_docs.pop("meta", None), before_docs.pop("meta", None)  # the migration stamp is rewritten
    assert after_docs == before_docs
    assert files(uploads) == before_files
    assert await login(gateway, user["email"])


async def test_restore_refuses_a_damaged_backup(gateway, env, tmp_path):
    await register(gateway)
    target = tmp_path / "backup"
    assert cli(env, "backup", str(target)).returncode == 0
    damaged = target / "users.bson.gz"
    damaged.write_bytes(damaged.read_bytes()[:-5] + b"xxxxx")
    result = cli(env, "restore", "--drop", str(target))
    assert result.returncode == 1 and "does not match" in result.stderr


async def test_import_copies_another_database_idempotently_with_a_count_check(gateway, env, infra, mongo):
    # The source: another database on a MongoDB-wire server, with data the app never wrote.
    source_name = mongo.name + "_src"
    client: MongoClient = MongoClient(infra.mongo_uri, tz_aware=True)
    try:
        source = client[source_name]
        source["users"].insert_many([{"email": f"old{i}@example.com", "name": f"Old {i}"} for i in range(1200)])
        source["notebooks"].insert_many([{"user_id": f"u{i % 7}", "title": f"N{i}"} for i in range(30)])
        args = ("import-database", "--from-uri", infra.mongo_uri, "--from-database", source_name)
        first = cli(env, *args)
        assert first.returncode == 0, first.stderr
        assert "counts match" in first.stderr and "users" in first.stderr
        assert mongo["users"].count_documents({}) == 1200
        # Rerunning (as after an interruption) writes the same documents again: no duplicates.
        second = cli(env, *args)
        assert second.returncode == 0, second.stderr
        assert mongo["users"].count_documents({}) == 1200
        assert mongo["notebooks"].find_one({"title": "N3"})["user_id"] == "u3"
        # A target that already holds other documents fails the count check.
        mongo["notebooks"].insert_one({"user_id": "extra", "title": "not in the source"})
        third = cli(env, *args)
        assert third.returncode == 1 and "MISMATCH" in third.stderr
    finally:
        client.drop_database(source_name)
        client.close()
