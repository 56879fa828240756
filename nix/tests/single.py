# testScript of collabry-single (nix/tests/single.nix); `scenarios` is tests/system/scenarios.py,
# loaded by the prelude in nix/tests/common.nix.
PORTS = [8001, 8002]
SECRETS = "/var/lib/collabry-test-secrets"

start_all()

with subtest("every unit of the appliance starts and nginx serves it"):
    scenarios.wait_for_appliance(machine, ports=PORTS)
    machine.wait_for_unit("collabry-llm.service")
    machine.wait_until_succeeds("curl -fsS -m 5 http://127.0.0.1:8200/v1/models", timeout=300)

with subtest("the units are the shipped ones, with the module's drop-ins"):
    cat = machine.succeed("systemctl cat collabry-gateway@8001.service")
    assert "/lib/systemd/system/collabry-gateway@.service" in cat, cat
    assert "overrides.conf" in cat, cat
    assert f"LoadCredential=jwt-secret:{SECRETS}/jwt-secret" in cat, cat
    assert "SupplementaryGroups=redis-collabry" in cat, cat
    env = machine.succeed("cat /etc/collabry/collabry.env")
    assert 'COLLABRY_REDIS_URL="unix:///run/redis-collabry/redis.sock"' in env, env
    assert 'COLLABRY_LLM_BASE_URL="http://127.0.0.1:8200/v1"' in env, env
    assert "SECRET" not in env.replace("COLLABRY_", ""), env
    scenarios.check_wiring(machine, PORTS, secrets_dir=SECRETS)
    # the local dependencies: FerretDB on loopback, Redis without a TCP port
    machine.succeed("ss -Htln | grep -q '127.0.0.1:27017'")
    machine.fail("ss -Htln | grep -q ':6379'")

with subtest("the database: FerretDB v2 on PostgreSQL with the DocumentDB extension set"):
    machine.wait_for_unit("postgresql.service")
    machine.succeed("systemctl is-active collabry-documentdb.service ferretdb.service")
    psql = "sudo -u postgres psql -X -tA -d postgres -c"
    extensions = machine.succeed(f"{psql} 'SELECT extname FROM pg_extension ORDER BY 1'").split()
    for name in ("documentdb", "documentdb_core", "pg_cron", "vector", "postgis", "rum", "tsm_system_rows"):
        assert name in extensions, extensions
    preload = machine.succeed(f"{psql} 'SHOW shared_preload_libraries'").strip()
    assert preload.split(",")[:3] == ["pg_cron", "pg_documentdb_core", "pg_documentdb"], preload
    assert machine.succeed(f"{psql} 'SHOW cron.database_name'").strip() == "postgres"
    assert "-ferretdb-2.5.0/bin/ferretdb" in machine.succeed("systemctl show -p ExecStart ferretdb.service")
    assert machine.succeed(f"{psql} \"SELECT rolcanlogin FROM pg_roles WHERE rolname = 'ferretdb'\"").strip() == "t"
    # PostgreSQL listens on loopback and its socket only
    machine.fail("ss -Htln | grep ':5432' | grep -v -e '127.0.0.1:5432' -e '\\[::1\\]:5432'")

with subtest("health, register and login through nginx"):
    account = scenarios.register_and_login(machine)
    token = account["token"]

with subtest("an AI answer arrives over SSE, incrementally"):
    result = json.loads(machine.succeed(
        f"collabry-test-client chat --base http://127.0.0.1 --token {token} "
        "--message 'Explain photosynthesis to a study group in three sentences.'",
        timeout=300,
    ))
    assert result["status"] == 200, result
    assert result["contentType"].startswith("text/event-stream"), result
    events = result["events"]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "meta", kinds
    assert kinds[-1] == "done", events[-3:]
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids)), ids
    tokens = [e for e in events if e["event"] == "token"]
    assert len(tokens) >= 3, kinds
    # tokens come in over time, not in one piece at the end
    arrivals = sorted({e["t"] for e in tokens})
    assert len(arrivals) >= 3 and arrivals[-1] - arrivals[0] > 0.05, arrivals
    session_id = events[0]["data"]["sessionId"]
    answer = "".join(e["data"]["text"] for e in tokens)

with subtest("Socket.IO through nginx reaches clients on both replicas"):
    out = json.loads(machine.succeed(
        f"collabry-test-client socketio --base http://127.0.0.1 --token {token} "
        + " ".join(f"--direct http://127.0.0.1:{p}" for p in PORTS),
        timeout=120,
    ))
    assert out["transports"][0] == "websocket", out
    assert all(a["ok"] for a in out["joinAcks"]), out
    assert out["updateAck"].get("ok"), out
    for i, got in enumerate(out["received"][:-1]):
        assert any(r["sameUpdate"] and r["boardId"] == out["boardId"] for r in got), (i, out)

with subtest("the worker timer runs each job once per slot"):
    ledger = scenarios.worker_runs_once_per_slot(machine)
    machine.succeed("systemctl list-timers --all --no-pager | grep -q collabry-worker.timer")

with subtest("a stopped gateway drains its requests"):
    scenarios.drain_on_stop(machine, PORTS[1])

with subtest("restarting the gateways one at a time fails no client request"):
    restart = " && ".join(
        f"systemctl restart collabry-gateway@{p}.service && "
        f"for i in $(seq 60); do curl -fsS -m 2 http://127.0.0.1:{p}/ready >/dev/null && break; sleep 1; done"
        for p in PORTS
    )
    stats = scenarios.rolling_restart_under_load(machine, PORTS, restart, token)
    machine.log(f"rolling restart: {stats}")

with subtest("a backup to restic, then a restore brings deleted data back"):
    # the scenario the Debian system test runs too (tests/system/test_appliance.py); the restore
    # rewinds the database to the backup, taken after everything the reboot check below reads
    machine.succeed("systemctl is-enabled collabry-backup.timer")
    backup = scenarios.backup_and_restore(machine, PORTS)
    machine.log(f"backup and restore: snapshot {backup['snapshot']} in {backup['backup_seconds']} s")

with subtest("a reboot keeps the data"):
    machine.shutdown()
    machine.start()
    scenarios.wait_for_appliance(machine, ports=PORTS)
    scenarios.data_survives_restart(machine, account, token, ledger)
    sessions = scenarios.http_json(machine, "GET", "http://127.0.0.1/api/ai/sessions", token=token)
    assert any(s["id"] == session_id for s in sessions["sessions"]), sessions
    messages = scenarios.http_json(
        machine, "GET", f"http://127.0.0.1/api/ai/sessions/{session_id}/messages", token=token
    )["messages"]
    assert any(m["role"] == "assistant" and m["content"].strip() == answer.strip() for m in messages), messages
