"""`collabry backups run|list|restore`: scheduled, rotated backups in a restic repository.

`collabry backups run` (what `collabry-backup.service` runs from its timer) gathers, in a staging
folder of the state directory:

- `database/`: the logical dump of every collection and the uploads archive (`collabry backup`,
  see backup.py), with its manifest of counts and SHA-256 sums;
- `redis.jsonl.gz`: every key under this appliance's prefix (`DUMP` with its remaining TTL):
  limiter state, unfinished answer streams, revocations;
- `indexes/`: the engine's FAISS snapshots (a cache of the database's vectors, kept so a restored
  engine starts warm);
- `BACKUP.json`: what the parts are and when they were taken.

It then hands the folder to restic (encrypted, deduplicated, to a local path or an S3-compatible
bucket), applies the retention policy (`restic forget --prune`) and writes a metrics textfile with
the time of the last success. `collabry backups restore [SNAPSHOT] [--drop]` brings a snapshot back
(database, uploads, Redis keys, FAISS snapshots).

Secrets come from files only: the repository password (`backup-password`) and, for S3, an AWS-style
shared credentials file (`backup-s3-credentials`), each from `$CREDENTIALS_DIRECTORY` or
`COLLABRY_<NAME>_FILE`. restic reads both files itself; no secret passes through the environment.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import ConfigError, Settings

FORMAT = 1
HOST_TAG = "collabry"  # every snapshot is recorded under this host name and tag, whatever the host
REDIS_FILE = "redis.jsonl.gz"
INFO_FILE = "BACKUP.json"


@dataclass(frozen=True, slots=True)
class BackupConfig:
    repository: str
    password_file: Path
    s3_credentials_file: Path | None
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    restic: str
    cache_dir: Path


def _secret_file(name: str, env: Mapping[str, str]) -> Path | None:
    """The path of secret ``name`` (``COLLABRY_<NAME>_FILE`` or ``$CREDENTIALS_DIRECTORY/<name>``)."""
    var = "COLLABRY_" + name.upper().replace("-", "_")
    if env.get(var):
        raise ConfigError(var, f"secrets are read from files only; set {var}_FILE to a file's path")
    if env.get(var + "_FILE"):
        path, setting = Path(env[var + "_FILE"]), var + "_FILE"
    elif env.get("CREDENTIALS_DIRECTORY"):
        path, setting = Path(env["CREDENTIALS_DIRECTORY"]) / name, f"$CREDENTIALS_DIRECTORY/{name}"
        if not path.exists():
            return None
    else:
        return None
    if not path.is_file():
        raise ConfigError(setting, f"{path} is not a readable file")
    return path


def _keep(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var) or str(default)
    if not raw.isdigit():
        raise ConfigError(var, f"expected a whole number, got {raw!r}")
    return int(raw)


def _repository(raw: str) -> str:
    var = "COLLABRY_BACKUP_REPOSITORY"
    if not raw:
        raise ConfigError(var, "not set: a local absolute path or s3:https://HOST/BUCKET[/PREFIX]")
    if raw.startswith("s3:"):
        parts = urlsplit(raw[3:])
        if parts.scheme not in ("http", "https") or not parts.netloc or len(parts.path.strip("/")) == 0:
            raise ConfigError(var, f"expected s3:https://HOST/BUCKET[/PREFIX], got {raw!r}")
        if parts.username or parts.password:
            raise ConfigError(var, "holds credentials; put them in the backup-s3-credentials file")
        return raw
    if not raw.startswith("/"):
        raise ConfigError(var, f"expected an absolute path or s3:https://HOST/BUCKET, got {raw!r}")
    return raw


def load_backup_config(settings: Settings, env: Mapping[str, str] | None = None) -> BackupConfig:
    env = os.environ if env is None else env
    repository = _repository(env.get("COLLABRY_BACKUP_REPOSITORY", ""))
    password = _secret_file("backup-password", env)
    if password is None:
        raise ConfigError("COLLABRY_BACKUP_PASSWORD_FILE", "secret 'backup-password' is required (the repository key)")
    s3 = _secret_file("backup-s3-credentials", env)
    if repository.startswith("s3:") and s3 is None:
        raise ConfigError(
            "COLLABRY_BACKUP_S3_CREDENTIALS_FILE", "an s3: repository needs the backup-s3-credentials file"
        )
    return BackupConfig(
        repository=repository,
        password_file=password,
        s3_credentials_file=s3,
        keep_daily=_keep(env, "COLLABRY_BACKUP_KEEP_DAILY", 7),
        keep_weekly=_keep(env, "COLLABRY_BACKUP_KEEP_WEEKLY", 4),
        keep_monthly=_keep(env, "COLLABRY_BACKUP_KEEP_MONTHLY", 6),
        restic=env.get("COLLABRY_RESTIC") or "restic",
        cache_dir=settings.state_dir / "restic-cache",
    )


class ResticError(Exception):
    pass


class Restic:
    """restic with this appliance's repository, password file and a minimal environment."""

    def __init__(self, config: BackupConfig) -> None:
        self.config = config

    def _env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.config.cache_dir)}
        if self.config.s3_credentials_file is not None:
            env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.config.s3_credentials_file)
        return env

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        executable = shutil.which(self.config.restic) or self.config.restic
        argv = [
            executable,
            "--repo", self.config.repository,
            "--password-file", str(self.config.password_file),
            "--cache-dir", str(self.config.cache_dir),
            "--quiet",
            *args,
        ]  # fmt: skip
        try:
            proc = subprocess.run(argv, env=self._env(), cwd=cwd, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise ResticError(f"restic not found ({self.config.restic}); install the restic package") from None
        if check and proc.returncode != 0:
            raise ResticError(f"restic {args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        return proc

    def ensure_repository(self) -> bool:
        """Initialise the repository when it does not exist yet; True when it was created."""
        if self.run("cat", "config", check=False).returncode == 0:
            return False
        self.run("init")
        return True

    def snapshots(self) -> list[dict[str, Any]]:
        out = self.run("snapshots", "--json", "--host", HOST_TAG, "--tag", HOST_TAG).stdout
        snaps: list[dict[str, Any]] = json.loads(out or "[]") or []
        return sorted(snaps, key=lambda s: s["time"])


# ---- the parts --------------------------------------------------------------------------------


async def dump_redis(settings: Settings, path: Path) -> int:
    """Every key under the prefix as one JSON line: key, DUMP payload, remaining TTL (ms, 0 = none)."""
    from .cache.client import create_redis

    redis = create_redis(settings, timeout=10.0)
    count = 0
    try:
        with gzip.open(path, "wt", encoding="ascii") as out:
            async for key in redis.scan_iter(match=settings.redis_prefix.encode() + b"*", count=500):
                payload = await redis.dump(key)
                if payload is None:  # expired between SCAN and DUMP
                    continue
                ttl = await redis.pttl(key)
                line = {
                    "k": base64.b64encode(key).decode(),
                    "v": base64.b64encode(payload).decode(),
                    "ttl": max(int(ttl), 0),
                }
                out.write(json.dumps(line) + "\n")
                count += 1
    finally:
        await redis.aclose()
    return count


async def load_redis(settings: Settings, path: Path, *, drop: bool) -> int:
    from .cache.client import create_redis

    redis = create_redis(settings, timeout=10.0)
    count = 0
    try:
        if drop:
            async for key in redis.scan_iter(match=settings.redis_prefix.encode() + b"*", count=500):
                await redis.delete(key)
        with gzip.open(path, "rt", encoding="ascii") as src:
            for raw in src:
                line = json.loads(raw)
                key = base64.b64decode(line["k"])
                if not key.startswith(settings.redis_prefix.encode()):
                    continue  # never write outside this appliance's keys
                await redis.restore(key, int(line["ttl"]), base64.b64decode(line["v"]), replace=True)
                count += 1
    finally:
        await redis.aclose()
    return count


def copy_indexes(source: Path, target: Path) -> int:
    """Copy the *.idx snapshots (each written by rename, so a copy is never half of one)."""
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    if source.is_dir():
        for path in sorted(source.glob("*.idx")):
            try:
                shutil.copy2(path, target / path.name)
            except FileNotFoundError:  # evicted by the engine meanwhile
                continue
            count += 1
    return count


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    return path


# Metric names of the textfile (node_exporter's textfile collector; monitoring/alerts.yml).
M_LAST_RUN = "collabry_backup_last_run_timestamp_seconds"
M_SUCCESS = "collabry_backup_last_run_success"
M_DURATION = "collabry_backup_duration_seconds"
M_LAST_SUCCESS = "collabry_backup_last_success_timestamp_seconds"
M_STAGED = "collabry_backup_staged_bytes"


def _gauge(name: str, help_text: str, value: float) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]


def _write_metrics(path: Path | None, ok: bool, seconds: float, size: int) -> None:
    if path is None:
        return
    now = round(time.time())
    lines = [
        *_gauge(M_LAST_RUN, "When the last backup run ended.", now),
        *_gauge(M_SUCCESS, "Whether the last backup run succeeded.", int(ok)),
        *_gauge(M_DURATION, "How long the last backup run took.", round(seconds, 3)),
    ]
    if ok:
        lines += _gauge(M_LAST_SUCCESS, "When the last successful backup ended.", now)
        lines += _gauge(M_STAGED, "Size of the last backup before deduplication.", size)
    elif path.exists():  # keep the last success's time so an alert can tell how old it is
        for line in path.read_text().splitlines():
            if line.startswith(M_LAST_SUCCESS + " "):
                lines += [f"# TYPE {M_LAST_SUCCESS} gauge", line]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)


# ---- commands ---------------------------------------------------------------------------------


async def run_backup(settings: Settings, config: BackupConfig, *, metrics_file: Path | None = None) -> int:
    from .backup import backup
    from .engine.index.snapshot import snapshot_dir

    started = time.monotonic()
    staging = _fresh(settings.state_dir / "backup-staging")
    ok = False
    size = 0
    try:
        restic = Restic(config)
        config.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if restic.ensure_repository():
            print(f"initialised the repository {config.repository}", file=sys.stderr)
        if await backup(settings, staging / "database") != 0:
            raise ResticError("the database dump failed")
        keys = await dump_redis(settings, staging / REDIS_FILE)
        print(f"redis: {keys} keys", file=sys.stderr)
        indexes = copy_indexes(snapshot_dir(settings.state_dir), staging / "indexes")
        print(f"indexes: {indexes} snapshots", file=sys.stderr)
        info = {"format": FORMAT, "database": settings.database_name, "redis_keys": keys, "indexes": indexes}
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2))
        size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        restic.run("backup", "--host", HOST_TAG, "--tag", HOST_TAG, str(staging))
        keep = ("--keep-daily", str(config.keep_daily), "--keep-weekly", str(config.keep_weekly),
                "--keep-monthly", str(config.keep_monthly))  # fmt: skip
        restic.run("forget", "--host", HOST_TAG, "--tag", HOST_TAG, *keep, "--prune")
        latest = restic.snapshots()[-1]
        print(f"snapshot {latest['short_id']} saved to {config.repository} ({size} bytes before deduplication)")
        ok = True
        return 0
    except ResticError as exc:
        print(f"collabry: backup failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _write_metrics(metrics_file, ok, time.monotonic() - started, size)


def list_snapshots(config: BackupConfig) -> int:
    try:
        snaps = Restic(config).snapshots()
    except ResticError as exc:
        print(f"collabry: {exc}", file=sys.stderr)
        return 1
    for snap in snaps:
        print(f"{snap['short_id']}  {snap['time'][:19].replace('T', ' ')}Z")
    if not snaps:
        print("no snapshots", file=sys.stderr)
    return 0


def _pick(snaps: Sequence[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    if not snaps:
        return None
    if wanted == "latest":
        return snaps[-1]
    matches = [s for s in snaps if s["id"].startswith(wanted)]
    return matches[0] if len(matches) == 1 else None


async def restore_snapshot(settings: Settings, config: BackupConfig, wanted: str, *, drop: bool) -> int:
    from .backup import restore
    from .engine.index.snapshot import snapshot_dir

    restic = Restic(config)
    try:
        snap = _pick(restic.snapshots(), wanted)
        if snap is None:
            print(f"collabry: no single snapshot matches {wanted!r} (see `collabry backups list`)", file=sys.stderr)
            return 1
        target = _fresh(settings.state_dir / "backup-restore")
        try:
            restic.run("restore", snap["id"], "--target", str(target))
            root = target / snap["paths"][0].lstrip("/")
            info = json.loads((root / INFO_FILE).read_text())
            if info.get("format") != FORMAT:
                print(f"collabry: snapshot format {info.get('format')} is not {FORMAT}", file=sys.stderr)
                return 1
            rc = await restore(settings, root / "database", drop=drop)
            if rc != 0:
                return rc
            keys = await load_redis(settings, root / REDIS_FILE, drop=drop)
            print(f"redis: {keys} keys", file=sys.stderr)
            indexes = snapshot_dir(settings.state_dir)
            if drop and indexes.exists():
                shutil.rmtree(indexes)
            print(f"indexes: {copy_indexes(root / 'indexes', indexes)} snapshots", file=sys.stderr)
        finally:
            shutil.rmtree(target, ignore_errors=True)
    except ResticError as exc:
        print(f"collabry: restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"restored snapshot {snap['short_id']} of {snap['time'][:19]}Z")
    return 0
