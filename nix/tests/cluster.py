# testScript of collabry-cluster (nix/tests/cluster.nix); `scenarios` is tests/system/scenarios.py
# and APP_HOSTS maps the app hosts' addresses to their names (both set by the Nix prelude).
import re
import time

start_all()

with subtest("the backend host serves the engine, the local model and the database"):
    db.wait_for_unit("collabry.target")
    db.wait_for_unit("postgresql.service")
    db.wait_for_unit("ferretdb.service")
    db.succeed("sudo -u postgres psql -X -tA -d postgres -c 'SELECT extname FROM pg_extension' | grep -qx documentdb")
    db.wait_for_unit("collabry-engine.service")
    db.wait_for_unit("collabry-llm.service")
    db.wait_until_succeeds("curl -fsS -m 5 http://127.0.0.1:8100/ready", timeout=300)
    db.wait_until_succeeds("curl -fsS -m 5 http://127.0.0.1:8200/v1/models", timeout=300)

with subtest("each app host runs a ready gateway and the worker timer, and nothing else"):
    for app in (app1, app2):
        app.wait_for_unit("collabry-gateway@8001.service")
        app.wait_until_succeeds("curl -fsS -m 5 http://127.0.0.1:8001/ready", timeout=300)
        app.succeed("systemctl is-active collabry-worker.timer")
        app.fail("systemctl is-active collabry-engine.service ferretdb.service postgresql.service redis-collabry.service")

with subtest("the engine, the database, Redis and the gateways answer their peers only"):
    proxy.wait_for_unit("nginx.service")
    client.wait_for_unit("multi-user.target")
    app1.succeed("curl -fsS -m 5 http://db:8100/health")
    proxy.succeed("curl -fsS -m 5 http://app1:8001/health")
    for port in (27017, 6379):
        app1.succeed(f"timeout 5 bash -c '</dev/tcp/db/{port}'")
        client.fail(f"timeout 5 bash -c '</dev/tcp/db/{port}'")
    client.fail("curl -fsS -m 5 http://db:8100/health")
    client.fail("curl -fsS -m 5 http://app1:8001/health")
    client.wait_until_succeeds("curl -fsS -m 5 http://proxy/health", timeout=120)

with subtest("register and login through the proxy"):
    client.succeed("mkdir -p /run/collabry-test")
    account = scenarios.register_and_login(client, base="http://proxy")
    token = account["token"]

with subtest("the worker timers of both app hosts run each job slot once"):
    scenarios.worker_runs_once_per_slot(app1)
    assert scenarios.unit_property(app2, "collabry-worker.service", "Result") == "success"

with subtest("an app host dies mid-answer and the answer resumes on the other one"):
    proxy.succeed("truncate -s 0 /var/log/nginx/upstream.log")
    first = json.loads(client.succeed(
        f"collabry-test-client chat --base http://proxy --token {token} --stop-after-tokens 3 "
        "--message 'Write a long story, at least 300 words, about a study group preparing for an exam.'",
        timeout=300,
    ))
    assert first["status"] == 200, first
    meta = first["events"][0]
    assert meta["event"] == "meta", first
    stream_id = meta["data"]["streamId"]
    session_id = meta["data"]["sessionId"]
    last_id = first["events"][-1]["id"]

    line = proxy.succeed("grep 'POST /api/ai/chat' /var/log/nginx/upstream.log | tail -n 1")
    served = re.search(r"upstream=([0-9.]+):8001", line)
    assert served, line
    victim_name = APP_HOSTS[served.group(1)]
    victim, survivor = (app1, app2) if victim_name == "app1" else (app2, app1)
    victim.crash()

    rest = json.loads(client.succeed(
        f"collabry-test-client resume --base http://proxy --token {token} "
        f"--stream-id {stream_id} --last-event-id {last_id}",
        timeout=300,
    ))
    assert rest["status"] == 200, rest
    events = rest["events"]
    ids = [e["id"] for e in events]
    assert ids == list(range(last_id + 1, last_id + 1 + len(ids))), (last_id, ids)
    assert events[-1]["event"] == "done", events[-3:]
    resumed = proxy.succeed("grep 'GET /api/ai/streams/' /var/log/nginx/upstream.log | tail -n 1")
    last_upstream = resumed.rsplit("upstream=", 1)[1].split(",")[-1].strip()
    assert APP_HOSTS[last_upstream.rsplit(":", 1)[0]] != victim_name, resumed

    # the engine saved the whole answer: the part read before the crash plus the resumed part
    answer = "".join(e["data"]["text"] for e in first["events"] + events if e["event"] == "token")
    deadline = time.monotonic() + 60
    while True:
        messages = scenarios.http_json(
            client, "GET", f"http://proxy/api/ai/sessions/{session_id}/messages", token=token
        )["messages"]
        saved = [m["content"] for m in messages if m["role"] == "assistant"]
        if saved or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert saved and saved[-1].strip() == answer.strip(), (saved, answer)

with subtest("the proxy keeps serving with one app host"):
    for _ in range(10):
        client.succeed("curl -fsS -m 10 http://proxy/health")
    scenarios.login(client, account, base="http://proxy")
    survivor.succeed("systemctl is-active collabry-gateway@8001.service")
