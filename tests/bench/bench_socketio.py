"""Socket.IO room broadcast, side by side with node socket.io 4 + @socket.io/redis-adapter.

    .venv/bin/python tests/bench/bench_socketio.py [--loads 100,500,1000] [--reps 3]
        [--broadcasts 40] [--interval-ms 200] [--plot docs/img/socketio-latency.png]

One client harness for both servers: the peers' node program (``../shared/peers``, copied to a
temporary directory, ``npm ci`` there). ``node/sio_clients.js`` drives node's two server processes
(``node/sio_server.js``); ``node/sio_clients_collabry.js`` is the same harness changed only to
authenticate, join one board and broadcast as ``board:awareness``, and drives our two gateway
replicas, connected directly on their ports (Redis, FerretDB as in production). The harness holds
N websocket clients split over the two processes plus one publisher on the first, so send and
receive times share one clock; it sends paced broadcasts (one per ``--interval-ms``) and records the
latency of every delivery. Both stacks stay up; the harness runs alternate between them (node first
in odd repetitions, ours first in even ones) for every load, ``--reps`` times. Server CPU per
delivery is read from /proc for the two server processes over each harness run (and the harness's
own, which bounds the median: one process reads every delivery of a broadcast in turn).
Prints medians per (server, load), the ratios ours/node, and writes the latency plot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from realtime_common import ROOT, cpu_seconds, raise_fd_limit, stack, user_token  # isort: skip
from engine_common import infra  # type: ignore[import-not-found]  # isort: skip
from plot import plot_latency  # isort: skip

from collabry.devstack.components import free_port

PEERS = ROOT.parent / "shared" / "peers"


def peers_copy(tmp: Path) -> Path | None:
    """The peers folder copied into ``tmp`` with its node modules installed, or None (said why)."""
    if not (PEERS / "node" / "sio_clients_collabry.js").exists():
        print(f"peer programs not found at {PEERS}: the side-by-side Socket.IO bench is skipped")
        return None
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("node/npm not on PATH: the side-by-side Socket.IO bench is skipped")
        return None
    peers = Path(shutil.copytree(PEERS, tmp / "peers", ignore=shutil.ignore_patterns("node_modules", "results")))
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=peers / "node", check=True,
                   stdout=subprocess.DEVNULL)
    return peers


def wait_polling(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"socket.io server on {port} not ready")


def run_harness(impl: str, script: Path, ports: list[int], pids: list[int], args: argparse.Namespace, clients: int,
                extra: list[str]) -> dict[str, Any]:
    """One harness run (one paced round); latency stats plus server CPU µs per delivery."""
    cmd = ["node", str(script), "--ports", ",".join(map(str, ports)), "--clients", str(clients),
           "--broadcasts", str(args.broadcasts), "--interval-ms", str(args.interval_ms), "--plan", "paced",
           "--timeout-s", "300", *extra]
    harness = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cpu0: list[float] = []
    result: dict[str, Any] = {}
    assert harness.stdout is not None
    for line in harness.stdout:
        line = line.rstrip()
        if line.startswith("CONNECTED"):
            cpu0 = [cpu_seconds(p) for p in [*pids, harness.pid]]
        elif line.startswith("ROUND"):
            result = json.loads(line.split(" ", 1)[1])
        elif line.startswith("DONE"):
            cpu = [cpu_seconds(p) - c for p, c in zip([*pids, harness.pid], cpu0, strict=True)]
            delivered = max(1, result.get("delivered", 0))
            result["cpu_us_per_delivery"] = sum(cpu[:-1]) * 1e6 / delivered
            result["harness_us_per_delivery"] = cpu[-1] * 1e6 / delivered
        elif line.startswith(("FAILED", "HARD TIMEOUT")):
            print(f"[{impl}] {line}", file=sys.stderr)
    harness.wait(timeout=30)
    if harness.returncode != 0 or "cpu_us_per_delivery" not in result:
        raise RuntimeError(f"{impl} harness failed (exit {harness.returncode}) at {clients} clients")
    if not result["complete"]:
        print(f"[{impl}] {clients} clients: {result['delivered']:,} of {result['expected']:,} delivered",
              file=sys.stderr)
    return result


async def board_for(url: str) -> tuple[str, str]:
    """A user and a board of theirs, through the API; returns (access token, board id)."""
    _user_id, token = await user_token(url, "Bench")
    async with aiohttp.ClientSession(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post("/api/boards", json={"title": "Bench"}) as resp:
            assert resp.status == 201, await resp.text()
            return token, str((await resp.json())["board"]["id"])


def median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", default="100,500,1000", help="clients per run, comma separated")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--broadcasts", type=int, default=40, help="paced broadcasts per run")
    parser.add_argument("--interval-ms", type=int, default=200)
    parser.add_argument("--plot", default=str(ROOT / "docs" / "img" / "socketio-latency.png"))
    args = parser.parse_args()
    loads = [int(n) for n in args.loads.split(",")]
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="collabry-sio-peers-") as tmp:
        peers = peers_copy(Path(tmp))
        if peers is None:
            return
        with infra() as base, stack(base) as s:
            ours = s.gateways(2)
            ours_pids = [p.proc.pid for p in s.processes if p.name.startswith("gateway-")]
            token, board = asyncio.run(board_for(f"http://127.0.0.1:{ours[0]}"))
            node_ports = [free_port(), free_port()]
            env = dict(os.environ, REDIS_URL=base.redis_url, NODE_ENV="production")
            node = [subprocess.Popen(["node", str(peers / "node" / "sio_server.js")], env={**env, "PORT": str(p)},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in node_ports]
            results: dict[tuple[str, int], list[dict[str, Any]]] = {}
            try:
                for p in node_ports:
                    wait_polling(p)
                started = time.monotonic()
                for rep in range(args.reps):
                    for clients in loads:
                        order = ["node", "collabry"] if rep % 2 == 0 else ["collabry", "node"]
                        for impl in order:
                            if impl == "node":
                                r = run_harness(impl, peers / "node" / "sio_clients.js", node_ports,
                                                [n.pid for n in node], args, clients, [])
                            else:
                                r = run_harness(impl, peers / "node" / "sio_clients_collabry.js", ours, ours_pids,
                                                args, clients, ["--token", token, "--board", board])
                            results.setdefault((impl, clients), []).append(r)
                            print(f"rep {rep + 1} {impl:8} {clients:5} clients: p50 {r['p50_ms']:7.2f} ms, "
                                  f"p99 {r['p99_ms']:7.2f} ms, max {r['max_ms']:7.2f} ms, "
                                  f"{r['cpu_us_per_delivery']:6.1f} µs CPU/delivery", flush=True)
                print(f"({time.monotonic() - started:.0f} s)")
            finally:
                for n in node:
                    n.terminate()
                for n in node:
                    try:
                        n.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        n.kill()
                        n.wait()
    report(results, loads, args)


def report(results: dict[tuple[str, int], list[dict[str, Any]]], loads: list[int], args: argparse.Namespace) -> None:
    print(f"\nSocket.IO room broadcast, 2 server processes each, {args.broadcasts} broadcasts per run one per "
          f"{args.interval_ms} ms; median of {args.reps} interleaved runs")
    print("| clients | server | p50 ms | p99 ms | max ms | server CPU µs/delivery | harness CPU µs/delivery "
          "| delivered |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for clients in loads:
        for impl in ("collabry", "node"):
            rows = results[(impl, clients)]
            delivered = sum(r["delivered"] for r in rows)
            expected = sum(r["expected"] for r in rows)
            print(f"| {clients} | {impl} | {median(rows, 'p50_ms'):.2f} | {median(rows, 'p99_ms'):.2f} "
                  f"| {median(rows, 'max_ms'):.2f} | {median(rows, 'cpu_us_per_delivery'):.1f} "
                  f"| {median(rows, 'harness_us_per_delivery'):.1f} | {delivered:,}/{expected:,} |")
    print("\nRatios collabry/node (>1: ours is slower or costs more)")
    print("| clients | p50 | p99 | max | CPU/delivery |")
    print("|---:|---:|---:|---:|---:|")
    for clients in loads:
        ours, node = results[("collabry", clients)], results[("node", clients)]
        cells = [median(ours, k) / max(1e-9, median(node, k))
                 for k in ("p50_ms", "p99_ms", "max_ms", "cpu_us_per_delivery")]
        print(f"| {clients} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    if args.plot:
        series = {
            f"{impl} {p}": [(clients, median(results[(impl, clients)], f"{p}_ms")) for clients in loads]
            for impl in ("collabry", "node") for p in ("p50", "p99")
        }
        out = plot_latency(args.plot, "Socket.IO room broadcast, 2 processes, paced", "clients in the room", series)
        print(f"\nplot: {out}")


if __name__ == "__main__":
    main()
