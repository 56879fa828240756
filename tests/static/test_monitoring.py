"""monitoring/ checked by Prometheus' own tool: `promtool check rules` on the alert rules,
`promtool test rules` on their unit tests, and every query of the Grafana dashboard parsed by
promtool as a recording rule (Grafana's variables replaced by values)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
# Grafana's variables in the dashboard's queries, and a value each can take.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$instance": ".*"}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed; `scripts/bootstrap.sh --test` installs Debian's prometheus")
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_alert_rules_pass_promtool_check() -> None:
    proc = _run("check", "rules", "alerts.yml", cwd=MONITORING)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rules = sum(len(g["rules"]) for g in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in proc.stdout, proc.stdout


def test_alert_unit_tests_pass_promtool_test() -> None:
    proc = _run("test", "rules", "alerts_test.yml", cwd=MONITORING)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_security_and_backup_alerts_have_unit_tests() -> None:
    tests = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]:
        if group["name"] in ("collabry-security", "collabry-backup"):
            for rule in group["rules"]:
                assert rule["alert"] in tested, f"{rule['alert']} has no promtool unit test"


def test_promtool_catches_a_broken_rule_and_a_wrong_expectation(tmp_path: Path) -> None:
    """The checks above can fail: a rule with invalid PromQL, and a unit test expecting an alert
    that does not fire."""
    (tmp_path / "bad.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m]) > \n"
    )
    assert _run("check", "rules", "bad.yml", cwd=tmp_path).returncode != 0
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    tests = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())
    case = next(c for c in tests["tests"] if any(t["alertname"] == "CollabryRefreshTokenReuse"
                                                for t in c["alert_rule_test"]))
    for t in case["alert_rule_test"]:
        if t["alertname"] == "CollabryRefreshTokenReuse" and not t.get("exp_alerts"):
            t["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]  # nothing fires yet at this time
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump({**tests, "tests": [case]}))
    assert _run("test", "rules", "alerts_test.yml", cwd=tmp_path).returncode != 0


def _dashboard() -> dict:
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    panels = [p for p in _dashboard()["panels"] if p["type"] != "row"]
    rules = []
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"panel {panel['id']}: unknown variable in {target['expr']}"
            rules.append({"record": f"dashboard:panel{panel['id']}:{target['refId'].lower()}", "expr": expr})
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = _run("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def test_dashboard_layout_and_references() -> None:
    dash = _dashboard()
    variables = {v["name"] for v in dash["templating"]["list"]}
    cells: dict[tuple[int, int], int] = {}
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["id"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {panel['id']} overlap"
                cells[(x, y)] = panel["id"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["id"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval", "__interval", "__range"}
            assert used <= variables, (panel["id"], used - variables)
