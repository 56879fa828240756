"""Scheduled backups (`collabry backups run|list|restore`, restic) to a local folder and to an
S3-compatible server (moto's server mode): back up, destroy everything, restore, compare."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import redis as redis_sync
from moto.server import ThreadedMotoServer

from collabry.devstack.components import free_port

from .helpers import login, user_with_token
from .test_backup import cli, files, snapshot, upload_text

pytestmark = pytest.mark.skipif(
    shutil.which("restic", path="/usr/bin:/bin") is None and os.environ.get("CI") != "true",
    reason="restic not installed (scripts/bootstrap.sh --test installs it)",
)

BUCKET = "collabry-backups"


@pytest.fixture
def settings(settings, engine):
    # Uploads are handed to a real engine process for ingestion.
    return settings.with_overrides(engine_url=engine.url)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An S3-compatible server on loopback with one bucket; its URL and a credentials file."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    creds = tmp_path / "s3-credentials"
    creds.write_text("[default]\naws_access_key_id = collabry\naws_secret_access_key = not-a-real-secret\n")
    creds.chmod(0o600)
    client = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id="collabry", aws_secret_access_key="not-a-real-secret",
    )  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    yield f"http://127.0.0.1:{port}", creds
    server.stop()


def backup_env(env: dict[str, str], tmp_path: Path, repository: str, creds: Path | None) -> dict[str, str]:
    password = tmp_path / "backup-password"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)
    extra = {
        "COLLABRY_BACKUP_REPOSITORY": repository,
        "COLLABRY_BACKUP_PASSWORD_FILE": str(password),
        "COLLABRY_BACKUP_KEEP_DAILY": "1",
        "COLLABRY_BACKUP_KEEP_WEEKLY": "0",
        "COLLABRY_BACKUP_KEEP_MONTHLY": "0",
    }
    if creds is not None:
        extra["COLLABRY_BACKUP_S3_CREDENTIALS_FILE"] = str(creds)
    return {**env, **extra}


def redis_probe(r: redis_sync.Redis, prefix: str) -> dict[str, object]:
    return {
        "hash": r.hgetall(prefix + "backup-probe:hash"),
        "stream": r.xrange(prefix + "backup-probe:stream"),
        "stream_ttl_set": r.ttl(prefix + "backup-probe:stream") > 3000,
    }


@pytest.mark.parametrize("where", ["local", "s3"])
async def test_backup_destroy_restore_gives_back_database_uploads_redis_and_indexes(
    where, gateway, env, settings, mongo, infra, tmp_path, request
):
    if where == "s3":
        url, creds = request.getfixturevalue("s3")
        repository: str = f"s3:{url}/{BUCKET}/appliance"
    else:
        creds, repository = None, str(tmp_path / "repository")
    benv = backup_env(env, tmp_path, repository, creds)

    user = await user_with_token(gateway, "backups")
    await upload_text(gateway, user, b"Photosynthesis turns light into sugar.\n" * 30)
    rebuilt = cli(env, "index", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    uploads, indexes = settings.state_dir / "uploads", settings.state_dir / "indexes"
    r = redis_sync.Redis.from_url(infra.redis_url)
    prefix = settings.redis_prefix
    r.hset(prefix + "backup-probe:hash", mapping={"a": "1", "b": "two"})
    r.xadd(prefix + "backup-probe:stream", {"type": "token", "data": "Hello"})
    r.expire(prefix + "backup-probe:stream", 3600)
    r.set("someone-else:key", "not ours")
    before = (snapshot(mongo), files(uploads), files(indexes), redis_probe(r, prefix))
    assert before[1] and before[2] and before[3]["hash"], "nothing to back up"

    metrics = tmp_path / "metrics" / "backup.prom"
    for _ in range(2):  # the second run leaves one snapshot: retention keeps one per day here
        result = cli(benv, "backups", "run", "--metrics-file", str(metrics))
        assert result.returncode == 0, result.stderr
        assert "saved to" in result.stdout
    listed = cli(benv, "backups", "list")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1, listed.stdout + listed.stderr
    prom = metrics.read_text()
    assert "collabry_backup_last_run_success 1" in prom and "collabry_backup_last_success_timestamp_seconds " in prom
    assert not (settings.state_dir / "backup-staging").exists()
    if where == "local":  # restic's repository holds nothing readable: encrypted packs
        stored = b"".join(p.read_bytes() for p in (tmp_path / "repository").rglob("*") if p.is_file())
        assert b"Photosynthesis" not in stored and user["email"].encode() not in stored

    # Destroy: the database, the uploads, the FAISS snapshots and every Redis key.
    mongo.client.drop_database(mongo.name)
    shutil.rmtree(uploads)
    shutil.rmtree(indexes)
    r.flushall()
    gone = await gateway.post("/api/auth/login", json={"email": user["email"], "password": user["password"]})
    assert gone.status == 401

    result = cli(benv, "backups", "restore", "--drop")
    assert result.returncode == 0, result.stderr
    after_docs = snapshot(mongo)
    after_docs.pop("meta", None), before[0].pop("meta", None)  # the migration stamp is rewritten
    assert after_docs == before[0]
    assert files(uploads) == before[1]
    assert files(indexes) == before[2]
    assert redis_probe(r, prefix) == before[3]
    assert r.get("someone-else:key") is None  # only this appliance's keys come back
    assert not (settings.state_dir / "backup-restore").exists()
    assert await login(gateway, user["email"])
    verified = cli(env, "index", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_backup_refuses_a_wrong_password_and_missing_secrets(gateway, env, tmp_path, s3):
    url, creds = s3
    repository = str(tmp_path / "repository")
    benv = backup_env(env, tmp_path, repository, None)
    metrics = tmp_path / "backup.prom"
    assert cli(benv, "backups", "run", "--metrics-file", str(metrics)).returncode == 0
    last_success = [x for x in metrics.read_text().splitlines() if x.startswith("collabry_backup_last_success")]

    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the password")
    bad = {**benv, "COLLABRY_BACKUP_PASSWORD_FILE": str(wrong)}
    result = cli(bad, "backups", "restore", "--drop")
    assert result.returncode == 1 and "restore failed" in result.stderr
    result = cli(bad, "backups", "run", "--metrics-file", str(metrics))
    assert result.returncode == 1 and "backup failed" in result.stderr
    prom = metrics.read_text()  # the failure is recorded; the last success's time is kept for alerts
    assert "collabry_backup_last_run_success 0" in prom and last_success[0] in prom.splitlines()

    # Configuration errors exit 78 with the setting's name, before anything runs.
    no_creds = cli(backup_env(env, tmp_path, f"s3:{url}/{BUCKET}", None), "backups", "run")
    assert no_creds.returncode == 78 and "COLLABRY_BACKUP_S3_CREDENTIALS_FILE" in no_creds.stderr
    in_url = cli(backup_env(env, tmp_path, f"s3:http://k:s@127.0.0.1:1/{BUCKET}", creds), "backups", "run")
    assert in_url.returncode == 78 and "COLLABRY_BACKUP_REPOSITORY" in in_url.stderr
    in_env = cli({**benv, "COLLABRY_BACKUP_PASSWORD": "plain"}, "backups", "list")
    assert in_env.returncode == 78 and "files only" in in_env.stderr
    unset = {k: v for k, v in benv.items() if k != "COLLABRY_BACKUP_REPOSITORY"}
    assert cli(unset, "backups", "run").returncode == 78

