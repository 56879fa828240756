"""Appliance scenarios, written once for every machine that runs the real units.

Each function takes a ``machine`` with the NixOS test driver's interface (``succeed``, ``fail``,
``execute``, ``wait_until_succeeds``, ``wait_for_unit``, ``wait_for_open_port``) and checks the
appliance from inside that machine with curl, systemctl and a stdlib-only ``python3``. The nspawn
harness (tests/system/nspawn.py) drives them against a Debian container installed with
deploy/install.sh; a NixOS ``testScript`` can load this file and call the same functions:

    exec(open("${./scenarios.py}").read())    # or import it from a store path
    wait_for_appliance(machine, ports=[8001, 8002])
    auth = register_and_login(machine)

The file imports nothing outside the standard library and has no module-level side effects.
What a machine needs: curl, python3, ss (iproute2), redis-cli, systemd, and the `collabry-admin`
wrapper (runs a collabry command as the services do; installed by deploy/install.sh).
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from typing import Any

NGINX = "http://127.0.0.1"
ENGINE_PORT = 8100
LOADGEN = "/run/collabry-test/loadgen.py"
SLOW_CLIENT = "/run/collabry-test/slow_client.py"

# --- helper programs copied into the machine (python3 standard library only) --------------------

_LOADGEN_SRC = r"""
import argparse, http.client, json, os, threading, time, urllib.parse
p = argparse.ArgumentParser()
p.add_argument("--url", action="append", required=True)
p.add_argument("--header", action="append", default=[])
p.add_argument("--concurrency", type=int, default=4)
p.add_argument("--duration", type=float, default=120)
p.add_argument("--stop-file", required=True)
p.add_argument("--out", required=True)
p.add_argument("--pause", type=float, default=0.01)
a = p.parse_args()
headers = dict(h.split(": ", 1) for h in a.header)
lock = threading.Lock()
stats = {"ok": 0, "failed": 0, "errors": [], "by_status": {}, "started": time.time()}
deadline = time.monotonic() + a.duration
def worker(n):
    i = n
    while time.monotonic() < deadline and not os.path.exists(a.stop_file):
        url = urllib.parse.urlsplit(a.url[i % len(a.url)]); i += 1
        try:
            c = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
            c.request("GET", url.path + ("?" + url.query if url.query else ""), headers=headers)
            r = c.getresponse(); r.read(); c.close()
            status, err = r.status, None
        except Exception as e:
            status, err = None, f"{type(e).__name__}: {e}"
        with lock:
            key = str(status)
            stats["by_status"][key] = stats["by_status"].get(key, 0) + 1
            if status == 200:
                stats["ok"] += 1
            else:
                stats["failed"] += 1
                if len(stats["errors"]) < 20:
                    stats["errors"].append({"t": round(time.time() - stats["started"], 3), "url": url.path,
                                            "status": status, "error": err})
        time.sleep(a.pause)
threads = [threading.Thread(target=worker, args=(n,)) for n in range(a.concurrency)]
for t in threads: t.start()
for t in threads: t.join()
stats["seconds"] = round(time.time() - stats["started"], 2)
tmp = a.out + ".tmp"
with open(tmp, "w") as f: json.dump(stats, f)
os.rename(tmp, a.out)
"""

_SLOW_CLIENT_SRC = r"""
import argparse, json, os, socket, time
p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--path", default="/api/auth/login")
p.add_argument("--seconds", type=float, default=6)
p.add_argument("--started", required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
body = json.dumps({"email": "drain@example.org", "password": "not-the-password-1"}).encode()
result = {}
t0 = time.monotonic()
try:
    s = socket.create_connection(("127.0.0.1", a.port), timeout=120)
    s.sendall((f"POST {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
    step = a.seconds / len(body)
    s.sendall(body[:1])
    open(a.started, "w").close()
    for i in range(1, len(body)):
        time.sleep(step)
        s.sendall(body[i:i + 1])
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    result = {"status": int(head.split()[1]) if head else None, "body": rest.decode(errors="replace")[:500]}
except Exception as e:
    result = {"status": None, "error": f"{type(e).__name__}: {e}"}
result["seconds"] = round(time.monotonic() - t0, 2)
tmp = a.out + ".tmp"
with open(tmp, "w") as f: json.dump(result, f)
os.rename(tmp, a.out)
"""


def install_helpers(machine: Any) -> None:
    """Copy the load generator and the slow client into the machine."""
    for path, src in ((LOADGEN, _LOADGEN_SRC), (SLOW_CLIENT, _SLOW_CLIENT_SRC)):
        machine.succeed(f"mkdir -p /run/collabry-test && cat > {path} <<'COLLABRY_EOF'\n{src}\nCOLLABRY_EOF")


# --- small helpers ----------------------------------------------------------------------------------


def http_json(
    machine: Any, method: str, url: str, body: Any = None, token: str | None = None, expect: int | tuple[int, ...] = 200
) -> Any:
    """One request with curl inside the machine; asserts the status and returns the JSON body."""
    body_file = f"/run/collabry-test/body-{uuid.uuid4().hex[:8]}"
    args = ["curl", "-sS", "-m", "30", "-X", method, "-o", body_file, "-w", "%{http_code}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    args.append(url)
    out = machine.succeed(
        f"mkdir -p /run/collabry-test && {shlex.join(args)}; echo; cat {body_file}; rm -f {body_file}"
    )
    status_text, _, text = out.partition("\n")
    status = int(status_text.strip())
    wanted = (expect,) if isinstance(expect, int) else expect
    assert status in wanted, f"{method} {url}: {status} (wanted {wanted}): {text[:500]}"
    return json.loads(text) if text.strip() else None


def status_code(machine: Any, url: str) -> int:
    out = machine.succeed(f"curl -s -o /dev/null -m 10 -w '%{{http_code}}' {shlex.quote(url)} || true")
    return int(out.strip() or 0)


def unit_property(machine: Any, unit: str, prop: str) -> str:
    return machine.succeed(f"systemctl show -p {prop} --value {shlex.quote(unit)}").strip()


def gateway_unit(port: int) -> str:
    return f"collabry-gateway@{port}.service"


# --- scenarios ----------------------------------------------------------------------------------------


def wait_for_appliance(machine: Any, ports: list[int], *, engine: bool = True, timeout: float = 180) -> None:
    """Every process of the appliance is up and ready, and nginx serves /health."""
    machine.succeed("mkdir -p /run/collabry-test")
    machine.wait_for_unit("collabry.target", timeout=timeout)
    units = [gateway_unit(p) for p in ports] + (["collabry-engine.service"] if engine else [])
    for unit in units:
        machine.wait_for_unit(unit, timeout=timeout)
    for port in ports + ([ENGINE_PORT] if engine else []):
        machine.wait_until_succeeds(f"curl -fsS -m 5 http://127.0.0.1:{port}/ready", timeout=timeout)
    machine.wait_until_succeeds(f"curl -fsS -m 5 {NGINX}/health", timeout=60)
    install_helpers(machine)


def check_wiring(machine: Any, ports: list[int], *, secrets_dir: str | None = "/etc/collabry/secrets") -> None:
    """The units are wired as designed: command lines, user, limits, secrets, listeners, Redis."""
    cat = machine.succeed(f"systemctl cat {gateway_unit(ports[0])}")
    assert "gateway --host 127.0.0.1 --port" in cat, cat
    for unit, memory, quota in (
        (gateway_unit(ports[0]), 512 * 2**20, "500ms"),
        ("collabry-engine.service", 4 * 2**30, "2s"),
        ("collabry-worker.service", 256 * 2**20, "250ms"),
    ):
        assert unit_property(machine, unit, "User") == "collabry", unit
        assert unit_property(machine, unit, "Slice") == "system-collabry.slice", unit
        assert unit_property(machine, unit, "MemoryMax") == str(memory), unit
        assert unit_property(machine, unit, "CPUQuotaPerSecUSec") == quota, unit
        assert "78" in unit_property(machine, unit, "RestartPreventExitStatus") or unit.startswith("collabry-worker")
        machine.succeed(f"systemd-analyze security --threshold=25 {unit} >/dev/null")
    assert unit_property(machine, gateway_unit(ports[0]), "Type") == "notify"
    assert unit_property(machine, "collabry-worker.service", "Type") == "oneshot"
    # Secrets: files readable by root only, handed to the units as credentials.
    if secrets_dir:
        for name in ("jwt-secret", "service-token", "webhook-secret"):
            mode = machine.succeed(f"stat -c '%a %U' {secrets_dir}/{name}").strip()
            assert mode == "600 root", (name, mode)
    creds = machine.succeed(f"ls /run/credentials/{gateway_unit(ports[0])}").split()
    assert {"jwt-secret", "service-token", "webhook-secret"} <= set(creds), creds
    pid = unit_property(machine, gateway_unit(ports[0]), "MainPID")
    env = machine.succeed(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert "CREDENTIALS_DIRECTORY=" in env, env
    assert not re.search(r"^COLLABRY_[A-Z_]*(SECRET|TOKEN|KEY)=", env, re.M), "a secret is in the environment"
    # The timer is scheduled every minute and keeps missed runs.
    assert "minutely" in machine.succeed("systemctl cat collabry-worker.timer")
    assert unit_property(machine, "collabry-worker.timer", "Persistent") == "yes"
    machine.succeed("systemctl list-timers --all --no-pager | grep -q collabry-worker.timer")
    # Only nginx listens beyond loopback: gateways, engine, Redis and the database never do.
    for line in machine.succeed("ss -Htln").splitlines():
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        if addr.strip("[]") in ("127.0.0.1", "::1") or port in ("80", "443", "22"):
            continue
        raise AssertionError(f"unexpected listener on {local}: {line}")
    # nginx never exposes the engine or metrics.
    assert status_code(machine, f"{NGINX}/metrics") == 404
    # Redis: append-only file and a memory cap that never evicts.
    assert machine.succeed("redis-cli CONFIG GET maxmemory-policy").split()[1] == "noeviction"
    assert machine.succeed("redis-cli CONFIG GET appendonly").split()[1] == "yes"
    assert int(machine.succeed("redis-cli CONFIG GET maxmemory").split()[1]) > 0


def register_and_login(machine: Any, base: str = NGINX) -> dict[str, str]:
    """Health, readiness, register and login through nginx; returns the account and its token."""
    assert http_json(machine, "GET", f"{base}/health") == {"status": "ok"}
    ready = http_json(machine, "GET", f"{base}/ready")
    assert ready["status"] == "ready", ready
    email = f"st-{uuid.uuid4().hex[:10]}@example.org"
    password = "Correct-Horse-9-battery"
    created = http_json(
        machine,
        "POST",
        f"{base}/api/auth/register",
        {"email": email, "password": password, "name": "System Test"},
        expect=201,
    )
    assert created["user"]["email"] == email, created
    login = http_json(machine, "POST", f"{base}/api/auth/login", {"email": email, "password": password})
    token = login["accessToken"]
    me = http_json(machine, "GET", f"{base}/api/auth/me", token=token)
    assert me["user"]["email"] == email, me
    return {"email": email, "password": password, "token": token, "id": created["user"]["id"]}


def login(machine: Any, account: dict[str, str], base: str = NGINX) -> str:
    body = {"email": account["email"], "password": account["password"]}
    return str(http_json(machine, "POST", f"{base}/api/auth/login", body)["accessToken"])


def _ledger(machine: Any) -> list[dict[str, Any]]:
    """Recent worker runs from `collabry worker status --json`, each with job, slot and status."""
    data = json.loads(machine.succeed("collabry-admin worker status --json"))
    runs = data.get("runs", data) if isinstance(data, dict) else data
    out = []
    for run in runs:
        run_id = str(run.get("_id") or run.get("id") or f"{run.get('job')}:{run.get('slot')}")
        job, _, slot = run_id.partition(":")
        out.append({**run, "_id": run_id, "job": run.get("job", job), "slot": str(run.get("slot", slot))})
    return out


def worker_runs_once_per_slot(machine: Any, *, slots: int = 2, timeout: float = 200) -> list[dict[str, Any]]:
    """The timer starts the worker every minute; each job runs once per slot, extra starts are no-ops."""
    machine.succeed("systemctl is-active collabry-worker.timer")
    deadline = time.monotonic() + timeout
    while True:
        runs = _ledger(machine)
        per_job: dict[str, set[str]] = {}
        for run in runs:
            per_job.setdefault(run["job"], set()).add(run["slot"])
        if per_job and max(len(s) for s in per_job.values()) >= slots:
            break
        assert time.monotonic() < deadline, f"fewer than {slots} slots after {timeout}s: {runs}"
        time.sleep(5)
    # Starting the worker by hand in the same minute claims nothing new.
    before = {r["_id"] for r in _ledger(machine)}
    machine.succeed("systemctl start collabry-worker.service", "systemctl start collabry-worker.service")
    after = _ledger(machine)
    ids = [r["_id"] for r in after]
    assert len(ids) == len(set(ids)), f"a slot ran twice: {ids}"
    new = {r["_id"] for r in after} - before
    # At most one new slot per job: a minute may have turned between the two reads.
    new_jobs = [i.partition(":")[0] for i in new]
    assert len(new_jobs) == len(set(new_jobs)), f"extra runs claimed several slots: {sorted(new)}"
    failed = [r for r in after if str(r.get("status", "ok")).lower() in ("failed", "error")]
    assert not failed, f"worker runs failed: {failed}"
    assert unit_property(machine, "collabry-worker.service", "Result") == "success"
    return after


def drain_on_stop(machine: Any, port: int, *, budget: float = 30, slow_seconds: float = 6) -> dict[str, Any]:
    """`systemctl stop` of a gateway with a slow request in flight: /ready turns 503, the request
    gets its full answer, the process exits 0 within the drain budget."""
    unit = gateway_unit(port)
    started, out = "/run/collabry-test/slow.started", "/run/collabry-test/slow.json"
    machine.succeed(f"rm -f {started} {out}")
    machine.succeed(
        f"systemd-run --quiet --collect --unit=collabry-test-slow-client python3 {SLOW_CLIENT} "
        f"--port {port} --seconds {slow_seconds} --started {started} --out {out}"
    )
    machine.wait_until_succeeds(f"test -e {started}", timeout=15)
    t0 = time.monotonic()
    machine.succeed(f"systemctl stop --no-block {unit}")
    # While it drains, the replica still answers probes, and /ready says it is going away.
    saw_draining = False
    while time.monotonic() - t0 < slow_seconds - 1:
        if status_code(machine, f"http://127.0.0.1:{port}/ready") == 503:
            saw_draining = True
            break
        time.sleep(0.2)
    machine.wait_until_succeeds(
        f'test "$(systemctl show -p ActiveState --value {unit})" = inactive', timeout=budget + 15
    )
    elapsed = time.monotonic() - t0
    machine.wait_until_succeeds(f"test -e {out}", timeout=15)
    result = json.loads(machine.succeed(f"cat {out}"))
    assert result.get("status") is not None and result["status"] < 500, f"in-flight request lost: {result}"
    assert saw_draining, "/ready never answered 503 while the replica drained"
    assert elapsed < budget + 10, f"stop took {elapsed:.1f}s"
    assert unit_property(machine, unit, "Result") == "success"
    assert unit_property(machine, unit, "ExecMainStatus") == "0"
    machine.succeed(f"systemctl start {unit}")
    machine.wait_until_succeeds(f"curl -fsS -m 5 http://127.0.0.1:{port}/ready", timeout=60)
    return {**result, "stop_seconds": round(elapsed, 2)}


def start_load(
    machine: Any,
    token: str | None,
    *,
    concurrency: int = 4,
    duration: float = 600,
    base: str = NGINX,
    name: str = "load",
) -> dict[str, str]:
    """Start client traffic through nginx (idempotent GETs) in a transient unit."""
    stop, out = f"/run/collabry-test/{name}.stop", f"/run/collabry-test/{name}.json"
    machine.succeed(f"rm -f {stop} {out}")
    args = [f"--url {base}/health"]
    if token:
        args += [f"--url {base}/api/auth/me", f"--header {shlex.quote('Authorization: Bearer ' + token)}"]
    machine.succeed(
        f"systemd-run --quiet --collect --unit=collabry-test-{name} python3 {LOADGEN} {' '.join(args)} "
        f"--concurrency {concurrency} --duration {duration} --stop-file {stop} --out {out}"
    )
    time.sleep(2)
    return {"stop": stop, "out": out}


def stop_load(machine: Any, load: dict[str, str]) -> dict[str, Any]:
    machine.succeed(f"touch {load['stop']}")
    machine.wait_until_succeeds(f"test -e {load['out']}", timeout=60)
    return dict(json.loads(machine.succeed(f"cat {load['out']}")))


def main_pids(machine: Any, ports: list[int]) -> dict[int, str]:
    return {p: unit_property(machine, gateway_unit(p), "MainPID") for p in ports}


def rolling_restart_under_load(machine: Any, ports: list[int], restart_cmd: str, token: str | None) -> dict[str, Any]:
    """Restart every gateway replica with `restart_cmd` while clients keep calling through nginx:
    no client request fails, and every replica runs a new process afterwards."""
    before = main_pids(machine, ports)
    load = start_load(machine, token, name="rolling")
    try:
        machine.succeed(restart_cmd, timeout=600)
        time.sleep(2)
    finally:
        stats = stop_load(machine, load)
    after = main_pids(machine, ports)
    assert all(before[p] != after[p] for p in ports), f"not every replica restarted: {before} -> {after}"
    assert stats["failed"] == 0, f"client requests failed during the rolling restart: {stats}"
    assert stats["ok"] > 20, stats
    return stats


def rollback_on_failed_gate(
    machine: Any, ports: list[int], token: str | None, *, prefix: str = "/opt/collabry", ready_timeout: int = 15
) -> dict[str, Any]:
    """A release whose gateways never become ready: the rollout stops at the first replica, puts
    the previous release back, and clients notice nothing."""
    good = machine.succeed(f"readlink {prefix}/current").strip()
    broken = f"broken-{uuid.uuid4().hex[:6]}"
    # The broken release runs the good code, but its gateways are pointed at a Redis that does
    # not exist: they start (READY=1) and report 503 on /ready forever.
    wrapper = (
        "#!/bin/sh\n"
        f'if [ "$1" = gateway ]; then export COLLABRY_REDIS_URL=redis://127.0.0.1:9/0; fi\n'
        f'exec {prefix}/{good}/venv/bin/collabry "$@"\n'
    )
    rel = f"{prefix}/releases/{broken}"
    machine.succeed(
        f"mkdir -p {rel}/venv/bin && cat > {rel}/venv/bin/collabry <<'EOF'\n{wrapper}EOF\n"
        f"chmod 755 {rel}/venv/bin/collabry && echo release={broken} > {rel}/RELEASE"
    )
    before = main_pids(machine, ports)
    load = start_load(machine, token, name="rollback")
    try:
        status, output = machine.execute(
            f"{prefix}/rollout.sh --to {broken} --ready-timeout {ready_timeout} 2>&1", timeout=600
        )
    finally:
        stats = stop_load(machine, load)
    assert status == 1, f"rollout should fail its gate and roll back (exit 1), got {status}:\n{output}"
    assert "ROLLING BACK" in output and "serving again" in output, output
    assert machine.succeed(f"readlink {prefix}/current").strip() == good
    for port in ports:
        machine.succeed(f"curl -fsS -m 5 http://127.0.0.1:{port}/ready")
    after = main_pids(machine, ports)
    # Only the first replica (the canary) was touched; the others never stopped serving.
    assert before[ports[0]] != after[ports[0]], (before, after)
    assert all(before[p] == after[p] for p in ports[1:]), (before, after)
    assert stats["failed"] == 0, f"client requests failed during the failed rollout: {stats}"
    machine.succeed(f"rm -rf {rel}")
    return {"output": output, "load": stats}


def data_survives_restart(
    machine: Any, account: dict[str, str], token_before: str, ledger_before: list[dict[str, Any]] | None = None
) -> None:
    """After a restart of the whole machine: the account logs in, a token issued before still
    works (the JWT secret survived) and the worker ledger still has the earlier runs."""
    me = http_json(machine, "GET", f"{NGINX}/api/auth/me", token=token_before)
    assert me["user"]["email"] == account["email"], me
    login(machine, account)
    if ledger_before:
        ids = {r["_id"] for r in _ledger(machine)}
        old = {r["_id"] for r in ledger_before}
        # `status` lists recent runs: the newest ones from before must still be there.
        assert ids & old, f"ledger lost its runs: before {sorted(old)[:5]}, after {sorted(ids)[:5]}"


def journal_has(machine: Any, unit: str, pattern: str) -> bool:
    out = machine.succeed(f"journalctl -b --no-pager -o cat -u {shlex.quote(unit)} || true")
    return re.search(pattern, out) is not None


# --- backups ------------------------------------------------------------------------------------------


def _upload_files(machine: Any, state_dir: str, source_id: str) -> str:
    """`sha256sum` of the stored file(s) of one source (empty when there is none)."""
    return machine.succeed(f"cd {state_dir}/uploads 2>/dev/null && sha256sum {source_id}.* 2>/dev/null || true").strip()


def backup_and_restore(
    machine: Any,
    ports: list[int],
    *,
    admin: str = "collabry-admin",
    state_dir: str = "/var/lib/collabry",
    engine: bool = True,
) -> dict[str, Any]:
    """The backup end to end: data written through the API (an account, a notebook with a text
    source and its stored file) is saved by `systemctl start collabry-backup.service` to restic,
    `collabry-admin backups list` shows the snapshot; then the data is destroyed (the source and
    its file deleted, the notebook deleted) and an account is created that the backup never saw.
    With the appliance stopped, `collabry-admin backups restore --drop` brings back the snapshot:
    the notebook, the source and its file byte for byte are there again, the later account is gone."""
    account = register_and_login(machine)
    token = account["token"]
    title = f"Backup drill {uuid.uuid4().hex[:6]}"
    notebook = http_json(machine, "POST", f"{NGINX}/api/notebooks", {"title": title}, token=token, expect=201)
    nb_id = notebook["notebook"]["id"]
    text = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. " * 20
    source = http_json(
        machine, "POST", f"{NGINX}/api/notebooks/{nb_id}/sources", {"title": "Notes", "text": text},
        token=token, expect=202,
    )["source"]  # fmt: skip
    src_url = f"{NGINX}/api/notebooks/{nb_id}/sources/{source['id']}"
    # Back up a settled source (indexed or failed), not one the engine is still writing.
    deadline = time.monotonic() + 120
    while (status := http_json(machine, "GET", src_url, token=token)["source"]["status"]) == "processing":
        assert time.monotonic() < deadline, f"source still processing after 120s: {source}"
        time.sleep(1)
    stored = _upload_files(machine, state_dir, source["id"])
    assert stored, f"no file for source {source['id']} under {state_dir}/uploads"

    # The unit the timer starts, started by hand: a oneshot, so this returns when it is done.
    t0 = time.monotonic()
    machine.succeed("systemctl start collabry-backup.service", timeout=900)
    seconds = round(time.monotonic() - t0, 1)
    assert unit_property(machine, "collabry-backup.service", "Result") == "success"
    assert journal_has(machine, "collabry-backup.service", r"snapshot [0-9a-f]{8} saved to "), machine.succeed(
        "journalctl -b --no-pager -o cat -n 40 -u collabry-backup.service"
    )
    metrics = machine.succeed(f"cat {state_dir}/metrics/backup.prom")
    assert re.search(r"^collabry_backup_last_run_success 1$", metrics, re.M), metrics
    assert re.search(r"^collabry_backup_last_success_timestamp_seconds \d+", metrics, re.M), metrics
    listed = machine.succeed(f"{admin} backups list")
    snapshots = re.findall(r"^([0-9a-f]{8})  \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", listed, re.M)
    assert snapshots, f"`{admin} backups list` shows no snapshot:\n{listed}"

    # Destroy: the source with its file, then the notebook; and an account the backup never saw.
    http_json(machine, "DELETE", src_url, token=token, expect=204)
    assert not _upload_files(machine, state_dir, source["id"]), "the deleted source's file is still there"
    http_json(machine, "DELETE", f"{NGINX}/api/notebooks/{nb_id}", token=token, expect=204)
    http_json(machine, "GET", f"{NGINX}/api/notebooks/{nb_id}", token=token, expect=404)
    later = register_and_login(machine)

    # Restore the latest snapshot with the appliance stopped (the database and Redis stay up).
    machine.succeed("systemctl stop collabry.target")
    try:
        restored = machine.succeed(f"{admin} backups restore latest --drop 2>&1", timeout=600)
    finally:
        machine.succeed("systemctl start collabry.target")
    assert f"restored snapshot {snapshots[-1]}" in restored, restored
    wait_for_appliance(machine, ports, engine=engine)

    token = login(machine, account)
    got = http_json(machine, "GET", f"{NGINX}/api/notebooks/{nb_id}", token=token)["notebook"]
    assert got["title"] == title, got
    listed_nbs = http_json(machine, "GET", f"{NGINX}/api/notebooks", token=token)["notebooks"]
    assert nb_id in [n["id"] for n in listed_nbs], listed_nbs
    back = http_json(machine, "GET", src_url, token=token)["source"]
    assert back["id"] == source["id"] and back["status"] == status, (back, status)
    assert _upload_files(machine, state_dir, source["id"]) == stored, "the source's file did not come back"
    body = {"email": later["email"], "password": later["password"]}
    http_json(machine, "POST", f"{NGINX}/api/auth/login", body, expect=401)
    return {"snapshot": snapshots[-1], "backup_seconds": seconds, "account": account, "source_status": status}


# --- log shipping ----------------------------------------------------------------------------------


def journal_entries_for_shipping(
    machine: Any, slice_name: str = "system-collabry.slice", lines: int = 500
) -> list[dict[str, Any]]:
    """The journal entries deploy/vector.toml's journald source selects (`include_matches`
    `_SYSTEMD_SLICE`), shaped as Vector's journald source hands them on: the line in `message`,
    `host` from `_HOSTNAME`, `timestamp` from the entry's realtime clock, the journal fields beside."""
    out = machine.succeed(
        f"journalctl --no-pager -o json -n {lines} _SYSTEMD_SLICE={shlex.quote(slice_name)}", timeout=60
    )
    events = []
    for raw in out.splitlines():
        entry = json.loads(raw)
        message = entry.pop("MESSAGE", "")
        if isinstance(message, list):  # not UTF-8: journalctl gives the bytes
            message = bytes(message).decode("utf-8", "replace")
        stamp = int(entry["__REALTIME_TIMESTAMP"])
        events.append(
            {
                **{k: v for k, v in entry.items() if isinstance(v, str)},
                "message": message,
                "host": entry.get("_HOSTNAME", ""),
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp // 10**6)) + f".{stamp % 10**6:06d}Z",
            }
        )
    return events
