"""Authenticated ``GET /api/auth/me`` through nginx: Collabry side by side with the Express peer.

    .venv/bin/python tests/bench/bench_http.py [--duration 5] [--conns 1,16,64,128] [--reps 3]
                                               [--plot docs/img/http-latency.png]

Ours: one gateway process (real Redis and FerretDB) behind the project's nginx rules, a registered
user's access token. The peer: ``../shared/peers/node/http_server.js`` (Express 5,
express-rate-limit + rate-limit-redis, jsonwebtoken HS256), copied to a temporary directory,
``npm ci`` there, run twice: with the secret as a string (as commonly written) and as a
``KeyObject`` (``JWT_KEYOBJECT=1``); each behind the same nginx rules, on the same Redis, with the
token ``http/mkjwt.py`` makes. Load: ``wrk -t1 -cN -dS --latency`` after a 1 s warm-up, for every
connection count, interleaved (ours, express, express-keyobject, then again), ``--reps`` times;
medians are printed with the ratio against each Express variant, and the server process's CPU
time per request (the fairer figure on a shared machine). Needs ``wrk``
(``apt-get install wrk``), node/npm and nginx; fails with a message when one is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from realtime_common import ROOT, cpu_seconds, stack, user_token  # isort: skip
from engine_common import infra  # type: ignore[import-not-found]  # isort: skip

from collabry.devstack import components
from collabry.devstack.components import Process, free_port, port_open

PEERS = ROOT.parent / "shared" / "peers"
SECRET = "peer-bench-secret-0123456789abcdef"
TARGETS = ("collabry", "express", "express-keyobject")


def need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"bench_http: `{tool}` is not installed ({hint})")
    return path


def to_ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value if unit == "ms" else value * 1000


def wrk(url: str, token: str, conns: int, seconds: float) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", "--timeout", "5s",
           "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50(?:\.000)?%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99(?:\.000)?%\s+(\S+)", out, re.M)
    assert rps and p50 and p99, out
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"bench_http: {url} answered {bad.group(1)} non-2xx responses:\n{out}")
    return {"rps": float(rps.group(1)), "p50": to_ms(p50.group(1)), "p99": to_ms(p99.group(1))}


def peer_copy(root: Path) -> Path:
    if not (PEERS / "node" / "http_server.js").exists():
        sys.exit(f"bench_http: the Express peer is not at {PEERS}/node (../shared/peers)")
    need("node", "Node 20")
    npm = need("npm", "Node 20's npm")
    copy = root / "peers"
    shutil.copytree(PEERS, copy, ignore=shutil.ignore_patterns("node_modules", "results"))
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=copy / "node", capture_output=True,
                          text=True, check=False, timeout=600)
    if done.returncode != 0:
        sys.exit(f"bench_http: `npm ci` for the Express peer failed (no registry?):\n{done.stderr[-2000:]}")
    return copy


def start_peer(copy: Path, root: Path, name: str, redis_url: str) -> tuple[Process, int]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": redis_url.rsplit("/", 1)[0], "JWT_SECRET": SECRET,
           "NODE_ENV": "production", "JWT_KEYOBJECT": "1" if name == "express-keyobject" else "0"}
    proc = Process(name, ["node", str(copy / "node" / "http_server.js")], root / "logs" / f"{name}.log",
                   lambda: port_open("127.0.0.1", port), env=env)
    proc.start().wait_ready(30)
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--conns", default="1,16,64,128")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--plot", default=str(ROOT / "docs" / "img" / "http-latency.png"))
    args = parser.parse_args()
    need("wrk", "apt-get install -y wrk")
    conns = [int(c) for c in args.conns.split(",")]
    with infra() as inf, stack(inf) as s, tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        root = Path(tmp)
        copy = peer_copy(root)
        gateway = s.gateways(1, extra={"COLLABRY_LOG_LEVEL": "info"})  # the access log on, as deployed
        url = {"collabry": f"http://127.0.0.1:{s.nginx(gateway)}/api/auth/me"}
        _, ours_token = asyncio.run(user_token(f"http://127.0.0.1:{gateway[0]}"))
        peer_token = subprocess.run([sys.executable, str(copy / "http" / "mkjwt.py")], capture_output=True,
                                    text=True, check=True, env={**os.environ, "JWT_SECRET": SECRET}).stdout.strip()
        token = {"collabry": ours_token, "express": peer_token, "express-keyobject": peer_token}
        pid = {"collabry": next(p.proc.pid for p in s.processes if p.name.startswith("gateway") and p.proc)}
        for name in TARGETS[1:]:
            proc, port = start_peer(copy, root, name, inf.redis_url)
            s.processes.append(proc)
            assert proc.proc is not None
            pid[name] = proc.proc.pid
            nginx_port = free_port()
            ngx = components.nginx(root / f"nginx-{name}", nginx_port, [port]).start().wait_ready(15)
            s.processes.append(ngx)
            url[name] = f"http://127.0.0.1:{nginx_port}/api/auth/me"
        runs: dict[tuple[str, int], list[dict[str, float]]] = {(t, c): [] for t in TARGETS for c in conns}
        started = time.monotonic()
        for rep in range(args.reps):
            for c in conns:
                for target in TARGETS:
                    wrk(url[target], token[target], c, 1)  # warm-up
                    cpu = cpu_seconds(pid[target])
                    result = wrk(url[target], token[target], c, args.duration)
                    result["cpu_us"] = (cpu_seconds(pid[target]) - cpu) * 1e6 / (result["rps"] * args.duration)
                    runs[(target, c)].append(result)
                    print(f"rep {rep + 1} -c{c:<4} {target:<18} {result['rps']:>9,.0f} req/s"
                          f"  p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms"
                          f"  server CPU {result['cpu_us']:5.0f} us/req", flush=True)
        print(f"\nGET /api/auth/me through nginx, wrk -t1 -d{args.duration:g}s, median of {args.reps} interleaved runs"
              f" ({time.monotonic() - started:.0f} s)\n")
        print(f"{'conns':>5} {'target':<18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}"
              f" {'req/s vs express':>17} {'req/s vs keyobject':>19} {'p99 vs keyobject':>17}")
        med: dict[tuple[str, int], dict[str, float]] = {
            k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50", "p99", "cpu_us")}
            for k, v in runs.items()
        }
        for c in conns:
            for target in TARGETS:
                m, e, k = med[(target, c)], med[("express", c)], med[("express-keyobject", c)]
                print(f"{c:>5} {target:<18} {m['rps']:>9,.0f} {m['p50']:>8.2f} {m['p99']:>8.2f} {m['cpu_us']:>11.0f}"
                      f" {m['rps'] / e['rps']:>17.2f} {m['rps'] / k['rps']:>19.2f} {m['p99'] / k['p99']:>17.2f}")
        if args.plot:
            sys.path.insert(0, str(Path(__file__).parent))
            from plot import plot_latency

            series = {f"{t} {q}": [(c, med[(t, c)][q]) for c in conns] for t in TARGETS for q in ("p50", "p99")}
            out = plot_latency(args.plot, "GET /api/auth/me through nginx (wrk -t1)", "connections", series,
                               log_y=True)
            print(f"\nplot: {out}")


if __name__ == "__main__":
    main()
