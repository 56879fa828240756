"""Engine cold start with ~200 MB of index snapshots vs reading those files.

    .venv/bin/python tests/bench/bench_engine_start.py [--megabytes 200] [--users 16]

Writes snapshots for ``--users`` users totalling about ``--megabytes`` (vectors + passages), then:
- read files: ``read_bytes`` of every snapshot (page cache dropped first with posix_fadvise);
- load all: what the engine does for each user on first use: read, verify the sha256, deserialise
  the FAISS index and the passages (page cache dropped first as well);
- engine process start: `collabry engine` from exec to /ready answering 200, with that state
  directory. Snapshots are loaded lazily (per user, on first use), so start time does not grow with
  them; the first retrieval of a user pays its own snapshot's load.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from engine_common import infra, unit_rows  # type: ignore[import-not-found]


def drop_cache(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--users", type=int, default=16)
    args = parser.parse_args()

    from collabry.devstack.components import free_port
    from collabry.engine.index.snapshot import read_snapshot, snapshot_path, write_snapshot
    from collabry.engine.index.store import UserIndex

    passage = "x" * 400
    per_row = 384 * 4 + 8 + 4 + len(passage) + 60
    rows_per_user = args.megabytes * 2**20 // per_row // args.users
    with infra() as env:
        state = Path(env.root) / "state"
        paths = []
        for u in range(args.users):
            idx = UserIndex(f"user{u:03d}", "all-MiniLM-L6-v2-int8", 384)
            vids = np.arange(rows_per_user, dtype=np.int64)
            metas = [(f"c{u}-{i}", i, None, passage) for i in range(rows_per_user)]
            idx.add_source("s", "i", vids, unit_rows(rows_per_user, seed=u), metas)
            path = snapshot_path(state, idx.user_id)
            write_snapshot(path, idx.snapshot_data())
            paths.append(path)
        total = sum(p.stat().st_size for p in paths)
        print(f"{len(paths)} snapshots, {total / 2**20:.0f} MiB, {rows_per_user * args.users} vectors")

        drop_cache(paths)
        started = time.perf_counter()
        for path in paths:
            path.read_bytes()
        read_s = time.perf_counter() - started

        drop_cache(paths)
        started = time.perf_counter()
        for path in paths:
            UserIndex.from_snapshot(read_snapshot(path))
        load_s = time.perf_counter() - started

        secrets_dir = Path(env.root) / "secrets"
        secrets_dir.mkdir()
        (secrets_dir / "service-token").write_text(secrets.token_hex(16))
        port = free_port()
        proc_env = {
            **os.environ,
            "COLLABRY_STATE_DIR": str(state),
            "COLLABRY_DATABASE_URI": env.mongo_uri,
            "COLLABRY_REDIS_URL": env.redis_url,
            "CREDENTIALS_DIRECTORY": str(secrets_dir),
            "COLLABRY_LOG_LEVEL": "warning",
        }
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "collabry.cli", "engine", "--port", str(port)], env=proc_env)
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.perf_counter() - started > 120:
                    raise TimeoutError("engine not ready")
                time.sleep(0.02)
            start_s = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(30)

        print(f"{'step':<44} {'s':>7} {'MiB/s':>8}")
        print(f"{'read files (read_bytes, cold cache)':<44} {read_s:>7.2f} {total / 2**20 / read_s:>8.0f}")
        print(f"{'load all (read + sha256 + deserialise)':<44} {load_s:>7.2f} {total / 2**20 / load_s:>8.0f}")
        print(f"{'load one user (average)':<44} {load_s / len(paths):>7.3f}")
        print(f"{'engine process start to /ready (lazy)':<44} {start_s:>7.2f}")


if __name__ == "__main__":
    main()
