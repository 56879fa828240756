"""The NixOS module evaluated, and the VM test scripts type-checked, with ../shared/nixeval.

../shared/nixeval (read-only, next to the project) holds nixpkgs' real `lib`, the real systemd
unit option types and renderer, the real redis and ferretdb NixOS modules, replicas of the other
option declarations, and nixpkgs' VM test driver sources. tests/static/nixeval/ extends it for
this project (a PostgreSQL module replica, pkgs stubs for the flake's database builds, the
scenarios of the database move and the web front end); see tests/static/nixeval/README.md.

For every scenario: the evaluation succeeds (an unknown option, a type error or a missing package
attribute fails it), exactly the expected assertions fail and the expected warnings appear, the
rendered nginx `http {}` block passes `nginx -t`, and the rendered units and drop-ins agree with
the shipped files of systemd/ and deploy/ (the module's "one source" claim). Then the testScripts
of nix/tests are type-checked as nixpkgs' driver does (mypy against the driver's sources). Both are
skipped, saying so, where ../shared/nixeval is absent.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(os.environ.get("COLLABRY_NIXEVAL", REPO.parent / "shared" / "nixeval"))
EVAL = REPO / "tests" / "static" / "nixeval" / "eval.nix"
SYSTEMD = REPO / "systemd"

pytestmark = pytest.mark.skipif(
    not (HARNESS / "nixpkgs" / "lib").is_dir() or shutil.which("nix-instantiate") is None,
    reason=f"no evaluation harness at {HARNESS} (or no nix-instantiate): the NixOS module is only parsed",
)

# How a scenario is evaluated, where it differs from the default (the flake's module, a pin whose
# pkgs.ferretdb is 1.24.0).
RUN_ARGS: dict[str, dict[str, Any]] = {
    "pin-ferretdb1": {"withFlake": False, "pinFerretdbVersion": "1.24.0"},
    "pin-ferretdb2": {"withFlake": False, "pinFerretdbVersion": "2.5.0"},
}

# Scenarios that must fail: a text each failed assertion must contain. `minimal` names every
# missing secret; each neg-* case fails exactly one assertion.
EXPECTED_FAILURES: dict[str, list[str]] = {
    "minimal": [
        "collabry-gateway@.service loads credential `jwt-secret`: set services.collabry.jwtSecretFile",
        "collabry-gateway@.service loads credential `service-token`: set services.collabry.serviceTokenFile",
        "collabry-gateway@.service loads credential `webhook-secret`: set services.collabry.webhookSecretFile",
        "collabry-engine.service loads credential `service-token`",
        "collabry-worker.service loads credential `service-token`",
        "collabry-migrate.service loads credential `service-token`",
        "gateways need services.collabry.jwtSecretFile and services.collabry.webhookSecretFile",
        "set services.collabry.serviceTokenFile (shared by gateways, workers and the engine)",
    ],
    "neg-store-secret": ["jwtSecretFile points into the Nix store"],
    "neg-settings-secret": ["must not carry secrets"],
    "neg-settings-managed": ["which the module derives from its typed options"],
    "neg-settings-nonprefixed": ["takes COLLABRY_* variables only; found: FOO"],
    "neg-drain": ["COLLABRY_DRAIN_TIMEOUT must stay below"],
    "neg-ports": ["runs past port 65535"],
    "neg-llm-both": ["leave services.collabry.llm.baseUrl unset"],
    "neg-postgresql-url-store": ["postgresqlUrlFile points into the Nix store"],
    "neg-postgresql-url-external": ["postgresqlUrlFile is for the local FerretDB"],
    "neg-backup-s3-credentials": ["is an S3 bucket: set services.collabry.backup.s3CredentialsFile"],
}

EXPECTED_WARNINGS: dict[str, list[str]] = {
    # the VM test's database host serves FerretDB to its two peers only (IPAddressAllow)
    "cluster-db": ["FerretDB listens on 0.0.0.0:27017 without authentication"],
}

# Units the module defines itself (no counterpart in systemd/): NixOS-only plumbing.
MODULE_UNITS = {"collabry-documentdb.service"}
# Credentials a drop-in may add to a shipped unit beyond the ones it declares (configured secrets).
OPTIONAL_CREDENTIALS = {"database-uri", "redis-url", "llm-api-key", "backup-s3-credentials", "smtp-password"}
# Keys that belong to the shipped unit: a drop-in that changed them would make the NixOS unit
# another unit than the Debian one.
UNIT_OWNED_KEYS = {"User", "Group", "DynamicUser", "Type", "Slice", "WorkingDirectory", "EnvironmentFile"}


def _nix_env() -> dict[str, str]:
    return dict(os.environ, NIX_CONFIG="build-users-group =")


@functools.cache
def scenario_names() -> list[str]:
    out = subprocess.run(
        [
            "nix-instantiate",
            "--eval",
            "--json",
            "-E",
            f"builtins.attrNames (import {REPO}/tests/static/nixeval/scenarios.nix "
            f"{{ lib = import {HARNESS}/nixpkgs/lib; }})",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_nix_env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def evaluate(scenario: str, project: Path = REPO) -> subprocess.CompletedProcess[str]:
    cmd = [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        str(EVAL),
        "--arg",
        "harness",
        str(HARNESS),
        "--arg",
        "project",
        str(project),
        "--argstr",
        "scenario",
        scenario,
    ]
    for name, value in RUN_ARGS.get(scenario, {}).items():
        if isinstance(value, bool):
            cmd += ["--arg", name, "true" if value else "false"]
        else:
            cmd += ["--argstr", name, str(value)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_nix_env(), check=False)


@functools.cache
def result(scenario: str) -> dict[str, Any]:
    out = evaluate(scenario)
    errors = "\n".join(line for line in out.stderr.splitlines() if "build-users-group" not in line)
    if out.returncode != 0:
        pytest.fail(f"scenario {scenario}: evaluation error\n{errors[-4000:]}")
    return dict(json.loads(out.stdout))


def _scenarios() -> list[str]:
    if not (HARNESS / "nixpkgs" / "lib").is_dir() or shutil.which("nix-instantiate") is None:
        return []
    return scenario_names()


def _hosts() -> list[str]:
    """The scenarios that make a system: the rendered files of the others (failed assertions)
    never reach a host."""
    return [s for s in _scenarios() if s not in EXPECTED_FAILURES]


# Names the VM test network resolves (/etc/hosts of the nodes): the cluster proxy's upstreams.
# nginx resolves upstream names when it loads its configuration, so `nginx -t` here gets the
# addresses nixos/lib/testing/network.nix gives those nodes.
TEST_HOSTS = {"app1": "192.168.1.2", "app2": "192.168.1.3", "db": "192.168.1.4"}


def _unit_text(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit or drop-in, values in order (blank lines and sections ignored)."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values.setdefault(key, []).append(value)
    return values


def _shipped(name: str) -> dict[str, list[str]]:
    return _unit_text((SYSTEMD / name).read_text())


def _template(unit: str) -> str:
    m = re.fullmatch(r"(.+@)[^.]*(\.[a-z]+)", unit)
    return m.group(1) + m.group(2) if m else unit


# --- every scenario ------------------------------------------------------------------------------


def test_the_harness_scenarios_are_all_here() -> None:
    """Every scenario of ../shared/nixeval runs here too (neg-ferretdb2 excepted: FerretDB 2 is
    now what the module runs, see the pin-* scenarios)."""
    out = subprocess.run(
        [
            "nix-instantiate",
            "--eval",
            "--json",
            "-E",
            f"builtins.attrNames (import {HARNESS}/harness/scenarios.nix {{ lib = import {HARNESS}/nixpkgs/lib; }})",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_nix_env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    missing = set(json.loads(out.stdout)) - set(scenario_names()) - {"neg-ferretdb2"}
    assert not missing, f"harness scenarios not evaluated here: {sorted(missing)}"
    for added in ("pin-ferretdb1", "pin-ferretdb2", "external-postgresql", "shared-postgresql", "frontend"):
        assert added in scenario_names(), added


@pytest.mark.parametrize("scenario", _scenarios())
def test_scenario_evaluates_with_exactly_the_expected_assertions(scenario: str) -> None:
    data = result(scenario)
    failed = data["failedAssertions"]
    expected = EXPECTED_FAILURES.get(scenario, [])
    assert len(failed) == len(expected), f"{scenario}: failed assertions {json.dumps(failed, indent=1)}"
    for text in expected:
        assert any(text in message for message in failed), f"{scenario}: no failed assertion says {text!r}: {failed}"
    wanted = EXPECTED_WARNINGS.get(scenario, [])
    assert len(data["warnings"]) == len(wanted), f"{scenario}: warnings {data['warnings']}"
    for text in wanted:
        assert any(text in w for w in data["warnings"]), (scenario, text, data["warnings"])


@pytest.mark.parametrize("scenario", _hosts())
def test_rendered_nginx_configuration_passes_nginx_t(scenario: str, tmp_path: Path) -> None:
    data = result(scenario)
    http = data["nginx"]["http"]
    if not http:
        assert not data["nginx"]["enable"]
        return
    out = nginx_t(http, tmp_path)
    assert out.returncode == 0, f"{scenario}: nginx -t: {out.stderr}\n--- {tmp_path / 'nginx.conf'}"


@pytest.mark.parametrize("scenario", _hosts())
def test_units_are_the_shipped_ones_with_drop_ins(scenario: str) -> None:
    """One source: the collabry units come from systemd/ (systemd.packages); the module writes
    drop-ins only, which leave the unit's identity alone, load only credentials the unit or a
    configured secret names, and replace ExecStart= only to listen beyond loopback."""
    data = result(scenario)
    shipped = {p.name for p in SYSTEMD.iterdir()}
    for name, unit in data["units"].items():
        base = name.split(".d/")[0] if ".d/" in name else name
        if not base.startswith("collabry"):
            continue
        if base in MODULE_UNITS:
            assert base not in shipped and not name.endswith("overrides.conf"), name
            continue
        template = _template(base)
        assert template in shipped, f"{scenario}: {base} is not a unit of systemd/"
        assert name == f"{base}.d/overrides.conf", f"{scenario}: {name} replaces a shipped unit instead of a drop-in"
        values = _unit_text(unit["text"])
        owned = UNIT_OWNED_KEYS & set(values)
        assert not owned, f"{scenario}: {name} sets {sorted(owned)}, which systemd/{template} owns"
        declared = {v.split(":", 1)[0] for v in _shipped(template).get("LoadCredential", [])}
        loaded = {v.split(":", 1)[0] for v in values.get("LoadCredential", [])}
        assert loaded <= declared | OPTIONAL_CREDENTIALS, (scenario, name, loaded - declared)
        if "@" not in base or base == template:
            # the unit itself (not an instance): every declared credential has a path
            assert declared <= loaded or not values, (scenario, name, declared - loaded)
        if "ExecStart" in values:
            shipped_exec = _shipped(template)["ExecStart"][-1]
            first, *rest = values["ExecStart"]
            assert first == "" and len(rest) == 1, (scenario, name, values["ExecStart"])
            host = re.search(r"--host (\S+)", rest[0])
            assert host and host.group(1) not in ("127.0.0.1", "::1", "localhost"), rest[0]
            assert re.sub(r"^\S+", "@COLLABRY_BIN@", rest[0]).replace(host.group(1), "127.0.0.1") == shipped_exec
    # the enabled roles all have their drop-in
    packages = data["systemdPackages"]
    if packages:
        for required in ("collabry.target", "collabry-migrate.service"):
            assert f"{required}.d/overrides.conf" in data["units"], (scenario, required)


def nginx_t(http: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` of a rendered `http {}` block. As ../shared/nixeval/harness/report.py: no
    certificates exist here, so the TLS lines go; names of the VM test network get its addresses."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.fail("nginx is not installed; `scripts/bootstrap.sh --test` installs Debian nginx-light")
    text = f"pid {tmp}/nginx.pid;\nerror_log stderr;\nevents {{}}\n" + http.replace("/var/log/nginx/", f"{tmp}/")
    text = "\n".join(
        line for line in text.splitlines() if not line.strip().startswith(("ssl_certificate", "http2 on"))
    ).replace(" ssl ;", " ;")
    for name, address in TEST_HOSTS.items():
        text = re.sub(rf"\bserver {name}:", f"server {address}:", text)
    conf = tmp / "nginx.conf"
    conf.write_text(text)
    return subprocess.run(
        [nginx, "-t", "-q", "-c", str(conf), "-p", str(tmp), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _flags(exec_start: str) -> dict[str, str]:
    return dict(re.findall(r"--([a-z-]+)(?:=(\S*))?", exec_start))


@pytest.mark.parametrize("scenario", _hosts())
def test_database_matches_the_shipped_database_units(scenario: str) -> None:
    """The local database of NixOS (services.postgresql + services.ferretdb) is set up as
    systemd/ferretdb.service and deploy/postgresql.conf set it up on Debian hosts."""
    data = result(scenario)
    ferret = data["units"].get("ferretdb.service")
    if not data["ferretdb"]["enable"]:
        assert not data["postgresql"]["enable"] or scenario == "shared-postgresql"
        return
    settings = data["ferretdb"]["settings"]
    shipped = _shipped("ferretdb.service")
    flags = _flags(shipped["ExecStart"][-1])
    if scenario != "cluster-db":
        assert settings["FERRETDB_LISTEN_ADDR"] == flags["listen-addr"]
    assert settings["FERRETDB_TELEMETRY"] == flags["telemetry"]
    if "no-auth" in flags:
        assert settings["FERRETDB_AUTH"] == "false"
    if "postgresql-url" in flags or "postgresql-url-file" in flags:
        assert "FERRETDB_POSTGRESQL_URL" in settings or "FERRETDB_POSTGRESQL_URL_FILE" in settings
    assert ferret is not None
    unit = _unit_text(ferret["text"])
    for key in ("Slice", "IPAddressDeny"):
        assert unit[key] == shipped[key], (scenario, key)
    if scenario != "cluster-db" and "external" not in scenario:
        assert unit["IPAddressAllow"] == shipped["IPAddressAllow"], scenario
    env = data["etc"]["collabry/collabry.env"]["text"]
    assert 'COLLABRY_DATABASE_URI="mongodb://127.0.0.1:27017"' in env
    assert "ferretdb.service" in _unit_text(data["units"]["collabry.target.d/overrides.conf"]["text"])["Wants"][0]

    if scenario == "external-postgresql":
        assert not data["postgresql"]["enable"]
        assert settings["FERRETDB_POSTGRESQL_URL_FILE"] == "/run/credentials/ferretdb.service/postgresql-url"
        assert "LoadCredential=postgresql-url:/run/secrets/collabry/postgresql-url" in ferret["text"]
        return
    pg = data["postgresql"]
    assert pg["enable"]
    conf = _postgresql_conf()
    preload = pg["settings"]["shared_preload_libraries"].split(",")
    wanted = conf.get("shared_preload_libraries", "pg_cron,pg_documentdb_core,pg_documentdb").split(",")
    assert [lib for lib in preload if lib in wanted] == wanted, preload
    database = pg["settings"]["cron.database_name"]
    assert database == conf.get("cron.database_name", database)
    assert settings["FERRETDB_POSTGRESQL_URL"] == f"postgres://ferretdb@/{database}?host=/run/postgresql"
    for key, value in conf.items():
        if key not in ("shared_preload_libraries",):
            assert str(pg["settings"][key]) == value, (key, pg["settings"][key], value)
    assert {"documentdb", "pg_cron", "pgvector", "postgis", "rum"} <= set(pg["extensions"])
    if RUN_ARGS.get(scenario, {}).get("withFlake", True):
        # the flake's pins
        assert data["ferretdb"]["version"] == "2.5.0"
        assert pg["package"] == "postgresql-17.6"
        assert pg["extensionVersions"]["pg_cron"] == "1.6.3"
        assert pg["extensionVersions"]["pgvector"] == "0.8.6"
    setup = data["units"]["collabry-documentdb.service"]["text"]
    assert "Before=ferretdb.service" in setup and "User=postgres" in setup
    assert "Requires=collabry-documentdb.service" in ferret["text"]


def _postgresql_conf() -> dict[str, str]:
    path = REPO / "deploy" / "postgresql.conf"
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*([A-Za-z_][\w.]*)\s*=\s*('[^']*'|[^'#\s]+)", line)
        if m:
            values[m.group(1)] = m.group(2).strip("'").replace(", ", ",")
    return values


# --- scenario-specific ---------------------------------------------------------------------------


def test_module_alone_is_pin_proof() -> None:
    """Without the flake, against a pin with FerretDB 1.x or 2.x, the module evaluates the same:
    no assertion depends on a version (the flake supplies FerretDB 2.5.0)."""
    one, two = result("pin-ferretdb1"), result("pin-ferretdb2")
    assert one["ferretdb"]["version"] == "1.24.0" and two["ferretdb"]["version"] == "2.5.0"
    assert one["failedAssertions"] == two["failedAssertions"] == []
    assert one["units"].keys() == two["units"].keys()
    module = (REPO / "nix" / "module.nix").read_text()
    assert "versionOlder" not in module and "versionAtLeast" not in module
    assert not re.search(r"sqlite|FERRETDB_HANDLER", module, re.I)


def test_engine_replicas_are_instances_of_the_shipped_template() -> None:
    data = result("engine-replicas")
    units = data["units"]
    for port in (8101, 8102):
        assert "collabry.target" in units[f"collabry-engine@{port}.service.d/overrides.conf"]["wantedBy"]
    assert "collabry-engine@8103.service.d/overrides.conf" not in units
    template = _unit_text(units["collabry-engine@.service.d/overrides.conf"]["text"])
    assert template["LoadCredential"] == ["service-token:/run/secrets/collabry/service-token"]
    env = data["etc"]["collabry/collabry.env"]["text"]
    engines = "http://127.0.0.1:8100,http://127.0.0.1:8101,http://127.0.0.1:8102,http://10.0.0.6:8100"
    assert f'COLLABRY_ENGINE_URL="{engines}"' in env
    single = result("minimal-secrets")
    assert not any(n.startswith("collabry-engine@") for n in single["units"])
    assert 'COLLABRY_ENGINE_URL="http://127.0.0.1:8100"' in single["etc"]["collabry/collabry.env"]["text"]


def test_metrics_endpoint_serves_every_engine_and_the_backup_textfile() -> None:
    """metrics.allowFrom with engine.replicas = 3 and the backup: nginx's metrics server has a path
    for each engine's port (8100, 8101, 8102), the old /engine/metrics, and the backup's textfile
    (which the CollabryBackupStale/Failed alerts read); nginx may read the textfiles."""
    data = result("metrics-replicas")
    locations = data["nginx"]["vhosts"]["collabry-metrics"]["locations"]
    assert set(locations) == {
        "= /gateway/8001/metrics",
        "= /gateway/8002/metrics",
        "= /engine/metrics",
        "= /engine/8100/metrics",
        "= /engine/8101/metrics",
        "= /engine/8102/metrics",
        "= /worker/metrics",
        "= /backup/metrics",
    }, sorted(locations)
    http = data["nginx"]["http"]
    for port in (8100, 8101, 8102):
        block = re.search(rf"location = /engine/{port}/metrics \{{\s*proxy_pass ([^;]+);", http)
        assert block and block.group(1) == f"http://127.0.0.1:{port}/metrics", port
    assert "alias /var/lib/collabry/metrics/backup.prom;" in http
    assert "SupplementaryGroups=collabry" in data["units"]["nginx.service"]["text"]
    # one engine, no backup: no replica paths, no backup path
    single = result("metrics")["nginx"]["vhosts"]["collabry-metrics"]["locations"]
    assert "= /engine/8100/metrics" in single and "= /engine/8101/metrics" not in single
    assert "= /backup/metrics" not in single


def test_the_smtp_password_reaches_the_gateways_only() -> None:
    units = result("mail")["units"]
    gateway = _unit_text(units["collabry-gateway@.service.d/overrides.conf"]["text"])
    assert "smtp-password:/run/secrets/collabry/smtp-password" in gateway["LoadCredential"]
    worker = _unit_text(units["collabry-worker.service.d/overrides.conf"]["text"])
    assert not any(c.startswith("smtp-password:") for c in worker.get("LoadCredential", []))


def test_log_shipping_runs_vector_with_the_shipped_pipeline() -> None:
    """services.collabry.logShipping: Vector with journal access and deploy/vector.toml (the file
    Debian hosts get), the Loki endpoint filled in; off by default."""
    data = result("log-shipping")
    assert data["vector"]["enable"] and data["vector"]["journaldAccess"]
    expected = tomllib.loads((REPO / "deploy/vector.toml").read_text())
    expected["sinks"]["loki"]["endpoint"] = "http://loki.internal:3100"
    assert data["vector"]["settings"] == expected
    assert not result("minimal-secrets")["vector"]["enable"]


def test_backups_enable_the_timer_with_their_credentials() -> None:
    data = result("backup-s3")
    service = _unit_text(data["units"]["collabry-backup.service.d/overrides.conf"]["text"])
    assert service["LoadCredential"] == [
        "backup-password:/run/secrets/collabry/backup-password",
        "backup-s3-credentials:/run/secrets/collabry/backup-s3-credentials",
    ]
    assert "203.0.113.10" in service["IPAddressAllow"]
    timer = data["units"]["collabry-backup.timer.d/overrides.conf"]
    assert _unit_text(timer["text"])["OnCalendar"] == ["", "hourly"] and "collabry.target" in timer["wantedBy"]
    env = data["etc"]["collabry/collabry.env"]["text"]
    assert 'COLLABRY_BACKUP_REPOSITORY="s3:https://s3.example.org/backups/collabry"' in env
    assert 'COLLABRY_BACKUP_KEEP_DAILY="14"' in env and re.search(r'COLLABRY_RESTIC="/nix/store/\S+/bin/restic"', env)
    assert "collabry-backup.timer.d/overrides.conf" not in result("minimal-secrets")["units"]


def test_frontend_is_served_at_the_root() -> None:
    data = result("frontend")
    vhost = data["nginx"]["vhosts"]["study.example.org"]
    root = vhost["root"]
    assert root and root.startswith("/nix/store/") and root.endswith("collabry-frontend-0.1.0")
    # nginx/locations.conf's `location /` and `/assets/` read files from the server's root
    assert f"root {root};" in data["nginx"]["http"]
    assert "try_files $uri /index.html;" in data["nginx"]["http"]
    # without a front end the host serves the API only
    assert result("docs-host")["nginx"]["vhosts"]["study.example.org"]["root"] is None


# --- VM test scripts -----------------------------------------------------------------------------


def _typecheck(project: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "collabry" / "nixeval-venv"
    env = dict(_nix_env(), NIXEVAL_OUT=str(tmp / "out"), NIXEVAL_VENV=str(cache), TMPDIR=str(tmp))
    return subprocess.run(
        [str(HARNESS / "typecheck.sh"), str(project)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def test_vm_test_scripts_type_check_as_the_nixos_driver_does(tmp_path: Path) -> None:
    out = _typecheck(REPO, tmp_path)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert report.count("   OK  (Success: no issues found") == 2, report


# --- the test of the test ------------------------------------------------------------------------


def _project_copy(tmp: Path) -> Path:
    copy = tmp / "project"
    for part in ("nix", "systemd", "nginx", "deploy", "tests/system", "frontend/package.json"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, copy / part, ignore=shutil.ignore_patterns("node_modules", "dist", "__pycache__"))
        elif src.exists():
            (copy / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, copy / part)
    return copy


def test_a_wrong_option_name_fails_the_evaluation(tmp_path: Path) -> None:
    copy = _project_copy(tmp_path)
    module = copy / "nix" / "module.nix"
    text = module.read_text()
    anchor = "      services.ferretdb = {\n        enable = true;"
    assert text.count(anchor) == 1
    module.write_text(text.replace(anchor, "      services.ferretdb.setings = { };\n" + anchor))
    out = evaluate("minimal-secrets", copy)
    assert out.returncode != 0
    assert "services.ferretdb.setings' does not exist" in out.stderr, out.stderr[-2000:]


def test_a_type_error_fails_the_evaluation(tmp_path: Path) -> None:
    copy = _project_copy(tmp_path)
    module = copy / "nix" / "module.nix"
    text = module.read_text()
    old = 'before = [ "ferretdb.service" ];'
    assert text.count(old) == 1
    module.write_text(text.replace(old, 'before = "ferretdb.service";'))
    out = evaluate("minimal-secrets", copy)
    assert out.returncode != 0
    assert "collabry-documentdb.before" in out.stderr and "is not of type" in out.stderr, out.stderr[-2000:]


def test_a_missing_package_attribute_fails_the_evaluation(tmp_path: Path) -> None:
    copy = _project_copy(tmp_path)
    database = copy / "nix" / "database.nix"
    database.write_text(database.read_text().replace("ps.rum", "ps.rum_not_in_nixpkgs"))
    out = evaluate("minimal-secrets", copy)
    assert out.returncode != 0
    assert "rum_not_in_nixpkgs" in out.stderr, out.stderr[-2000:]


def test_a_broken_nginx_rule_fails_nginx_t(tmp_path: Path) -> None:
    copy = _project_copy(tmp_path)
    locations = copy / "nginx" / "locations.conf"
    locations.write_text(locations.read_text() + "\nlocation /broken { proxy_pass; }\n")
    out = evaluate("docs-host", copy)
    assert out.returncode == 0, out.stderr[-2000:]
    r = nginx_t(json.loads(out.stdout)["nginx"]["http"], tmp_path)
    assert r.returncode != 0 and "proxy_pass" in r.stderr


def test_a_type_error_in_a_vm_test_script_fails_the_type_check(tmp_path: Path) -> None:
    copy = _project_copy(tmp_path)
    script = copy / "nix" / "tests" / "single.py"
    script.write_text(script.read_text() + "\nmachine.wait_for_open_port('8080')\n")
    out = _typecheck(copy, tmp_path)
    assert out.returncode != 0
    assert "nix/tests/single.py" in out.stdout and "wait_for_open_port" in out.stdout, out.stdout[-3000:]


# --- OCI images ----------------------------------------------------------------------------------


def test_images_are_labelled_non_root_and_health_checked() -> None:
    """nix/images.nix with dockerTools standing in (streamLayeredImage returns its arguments):
    the image configs Docker will read."""
    expr = f"""
      let
        lib = import {HARNESS}/nixpkgs/lib;
        dockerTools = {{
          streamLayeredImage = a: a;
          fakeNss = {{ override = a: {{ name = "fake-nss"; inherit a; }}; }};
          caCertificates = {{ name = "ca-certificates"; }};
        }};
        python3 = "/nix/store/00000000000000000000000000000000-python3-3.13";
        collabry = {{
          type = "derivation"; name = "collabry-0.1.0"; version = "0.1.0"; meta.mainProgram = "collabry";
          outPath = "/nix/store/11111111111111111111111111111111-collabry-0.1.0";
        }};
        images = import {REPO}/nix/images.nix {{ inherit lib dockerTools python3 collabry; revision = "abc123"; }};
      in lib.mapAttrs (_: i: {{ inherit (i) name tag config fakeRootCommands; }}) images
    """
    out = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
        capture_output=True,
        text=True,
        timeout=120,
        env=_nix_env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    images = json.loads(out.stdout)
    assert set(images) == {"gateway-image", "engine-image", "worker-image"}
    for key, image in images.items():
        role = key.removesuffix("-image")
        config = image["config"]
        assert image["name"] == f"collabry-{role}" and image["tag"] == "0.1.0"
        assert config["User"] == "65532:65532"
        labels = config["Labels"]
        for label in ("title", "description", "version", "licenses", "source", "revision", "ref.name"):
            assert labels.get(f"org.opencontainers.image.{label}"), (role, label)
        assert labels["org.opencontainers.image.version"] == "0.1.0"
        assert labels["org.opencontainers.image.revision"] == "abc123"
        health = config["Healthcheck"]
        assert health["Test"][0] == "CMD" and health["Test"][1].endswith("/bin/python3")
        compile(health["Test"][3], f"{role} healthcheck", "exec")
        for duration in ("Interval", "Timeout", "StartPeriod"):
            assert isinstance(health[duration], int) and health[duration] >= 10**9, (role, duration)
        ports = list(config["ExposedPorts"])
        if ports:
            assert f"127.0.0.1:{ports[0].split('/')[0]}/health" in health["Test"][3]
    assert "--metrics-file" in images["worker-image"]["config"]["Cmd"]
    assert "/var/lib/collabry/metrics/worker.prom" in images["worker-image"]["config"]["Healthcheck"]["Test"][3]
