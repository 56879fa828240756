"""Backup and restore through the CLI against the real database."""

from __future__ import annotations

import subprocess
import sys

from .helpers import login, register


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "collabry.cli", *args], env={**env, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, check=False, timeout=60)


async def test_backup_restore_round_trip(gateway, env, mongo, tmp_path):
    user = await register(gateway)
    await login(gateway, user["email"])
    target = tmp_path / "backup"
    result = cli(env, "backup", str(target))
    assert result.returncode == 0, result.stderr
    assert (target / "manifest.json").exists()
    assert cli(env, "restore", str(target)).returncode == 1  # refuses to overwrite without --drop
    mongo["users"].delete_many({})
    gone = await gateway.post("/api/auth/login", json={"email": user["email"], "password": user["password"]})
    assert gone.status == 401
    result = cli(env, "restore", "--drop", str(target))
    assert result.returncode == 0, result.stderr
    assert await login(gateway, user["email"])


async def test_restore_refuses_a_damaged_backup(gateway, env, tmp_path):
    await register(gateway)
    target = tmp_path / "backup"
    assert cli(env, "backup", str(target)).returncode == 0
    damaged = target / "users.bson.gz"
    damaged.write_bytes(damaged.read_bytes()[:-5] + b"xxxxx")
    result = cli(env, "restore", "--drop", str(target))
    assert result.returncode == 1 and "does not match" in result.stderr
