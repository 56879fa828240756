"""Static checks of the deployment text: the unit files of systemd/ as the installer renders them
(`systemd-analyze verify`, exposure score at most 2.5 each), the rules every unit shares, the
installer's nginx site (`nginx -t`) and the shell scripts.

Units are rendered by `deploy/install.sh --render-units`, the same code path a real install takes,
into a scratch root that also holds the host's stock units and stand-ins for the executables.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
BIN = "/opt/collabry/current/venv/bin/collabry"
MAX_EXPOSURE = 2.5
SERVICES = [
    "collabry-gateway@8001.service",
    "collabry-engine.service",
    "collabry-engine@8101.service",
    "collabry-worker.service",
    "collabry-migrate.service",
    "collabry-llm.service",
    "ferretdb.service",
    "collabry-postgresql.service",
    "collabry-backup.service",
]
ALL_UNITS = [*SERVICES, "collabry.target", "collabry-worker.timer", "collabry-backup.timer", "system-collabry.slice"]
# Long-running processes and their resource limits (MemoryMax, CPUQuota).
LIMITS = {
    "collabry-gateway@.service": ("512M", "50%"),
    "collabry-engine.service": ("4G", "200%"),
    "collabry-engine@.service": ("4G", "200%"),
    "collabry-worker.service": ("256M", "25%"),
}
PLACEHOLDERS = {"@COLLABRY_BIN@", "@SECRETS_DIR@", "@STATE_DIR@", "@FERRETDB_BIN@", "@PREFIX@", "@PG_BINDIR@"}
# The database's units run other programs under their own dynamic users.
DATABASE_UNITS = ("ferretdb.service", "collabry-postgresql.service")

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def _parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values...]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {line} outside a section"
        current.setdefault(key, []).append(value)
    return sections


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch root with the rendered units, the host's stock units and stand-in executables."""
    root = tmp_path_factory.mktemp("unit-root")
    unit_dir = root / "etc/systemd/system"
    subprocess.run([str(REPO / "deploy/install.sh"), "--render-units", str(unit_dir)], check=True)
    stock = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None)
    if stock is not None:
        shutil.copytree(stock, root / "usr/lib/systemd/system", symlinks=True)
    for exe in (BIN, "/opt/collabry/bin/ferretdb", "/opt/collabry/bin/collabry-postgresql-setup",
                "/usr/lib/postgresql/15/bin/postgres", "/bin/sh", "/bin/kill"):
        target = root / exe.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(0o755)
    return root


@needs_analyze
@pytest.mark.parametrize("unit", ALL_UNITS)
def test_systemd_analyze_verify(root: Path, unit: str) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", unit],
        cwd=root / "etc/systemd/system",
        capture_output=True,
        text=True,
        check=False,
    )
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0 and not output, f"systemd-analyze verify {unit}:\n{output}"


@needs_analyze
@pytest.mark.parametrize("unit", SERVICES)
def test_exposure_score(root: Path, unit: str) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={root}", "--threshold=25", "--no-pager", unit],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    score = float(match.group(1))
    assert score <= MAX_EXPOSURE and proc.returncode == 0, f"{unit} scores {score}:\n{proc.stdout}"


def test_every_unit_file_is_covered() -> None:
    names = {p.name for p in UNITS.iterdir()}
    covered = {re.sub(r"@\d+\.", "@.", u) for u in ALL_UNITS}
    assert names == covered, f"not checked: {names - covered}; missing: {covered - names}"


def _hardening(path: Path) -> list[str]:
    text = path.read_text()
    block = text[text.index("# Hardening") :]
    block = block.split("[Install]")[0]
    return [line for line in block.splitlines()[1:] if line.strip() and not line.startswith("#")]


def test_hardening_block_is_shared() -> None:
    """One hardening block, written the same in every service; the documented exceptions only."""
    reference = _hardening(UNITS / "collabry-gateway@.service")
    # numpy/faiss/onnxruntime/llama.cpp: no W^X guarantee tested, and they read /proc/cpuinfo.
    heavy = [x for x in reference if x not in ("MemoryDenyWriteExecute=yes", "ProcSubset=pid")]
    expected = {
        "collabry-engine.service": heavy,
        "collabry-engine@.service": heavy,
        "collabry-llm.service": heavy,
    }
    for path in UNITS.glob("*.service"):
        assert _hardening(path) == expected.get(path.name, reference), path.name


@pytest.mark.parametrize("name", sorted(p.name for p in UNITS.glob("*.service")))
def test_service_contract(name: str) -> None:
    unit = _parse(UNITS / name)
    service = unit["Service"]
    assert service["Slice"] == ["system-collabry.slice"]
    assert service.get("CapabilityBoundingSet") == [""]
    if name in DATABASE_UNITS:
        assert service.get("DynamicUser") == ["yes"] or service.get("User") == ["postgres"]
        secret = "@SECRETS_DIR@/database-password"
        assert service.get("LoadCredential") == [f"database-password:{secret}"] or (
            service["ExecStartPost"][0].endswith(f" ready {secret}")
        )
        return
    assert service["ExecStart"][0].startswith("@COLLABRY_BIN@ "), service["ExecStart"]
    assert service["User"] == ["collabry"] and service["StateDirectory"][0].startswith("collabry")
    assert "-/etc/collabry/collabry.env" in service["EnvironmentFile"]
    env = " ".join(service["Environment"])
    assert "OMP_NUM_THREADS=1" in env and "OPENBLAS_NUM_THREADS=1" in env
    for cred in service.get("LoadCredential", []):
        cred_name, _, path = cred.partition(":")
        assert path == f"@SECRETS_DIR@/{cred_name}", cred
    if name in LIMITS:  # the processes that drain on SIGTERM
        stop = service["TimeoutStopSec"][0]
        assert int(stop.rstrip("s")) > 30, "TimeoutStopSec must exceed the 30 s drain budget"
        assert (service["MemoryMax"], service["CPUQuota"]) == ([LIMITS[name][0]], [LIMITS[name][1]])
    if service["Type"] == ["oneshot"] and "Restart" not in service:
        return
    assert service["Restart"] == ["on-failure"] and service["RestartPreventExitStatus"] == ["78"]
    if name in ("collabry-gateway@.service", "collabry-engine.service", "collabry-engine@.service"):
        assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]


def test_secrets_reach_the_processes_that_need_them() -> None:
    def creds(name: str) -> set[str]:
        return {c.partition(":")[0] for c in _parse(UNITS / name)["Service"].get("LoadCredential", [])}

    assert {"jwt-secret", "service-token", "webhook-secret"} <= creds("collabry-gateway@.service")
    assert "service-token" in creds("collabry-engine.service")
    assert creds("collabry-engine@.service") == creds("collabry-engine.service")
    assert "service-token" in creds("collabry-worker.service")


def test_worker_timer() -> None:
    timer = _parse(UNITS / "collabry-worker.timer")["Timer"]
    assert timer["OnCalendar"] == ["minutely"]
    assert timer["Persistent"] == ["true"] and timer["AccuracySec"] == ["1s"]
    assert _parse(UNITS / "collabry-worker.service")["Service"]["ExecStart"][0].startswith(
        "@COLLABRY_BIN@ worker run-due --metrics-file "
    )


def test_engine_replica_unit_is_the_engine_on_another_port() -> None:
    """collabry-engine@PORT differs from collabry-engine.service only in its port and description."""
    single, replica = _parse(UNITS / "collabry-engine.service"), _parse(UNITS / "collabry-engine@.service")
    assert replica["Service"]["ExecStart"] == [single["Service"]["ExecStart"][0].replace("--port 8100", "--port %i")]
    for section in ("Unit", "Service"):
        for key in set(single[section]) | set(replica[section]):
            if key not in ("ExecStart", "Description"):
                assert replica[section].get(key) == single[section].get(key), (section, key)


def test_backup_timer() -> None:
    timer = _parse(UNITS / "collabry-backup.timer")
    assert timer["Timer"]["Unit"] == ["collabry-backup.service"] and timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["collabry.target"]
    service = _parse(UNITS / "collabry-backup.service")["Service"]
    assert service["ExecStart"][0].startswith("@COLLABRY_BIN@ backups run --metrics-file %S/collabry/metrics/")
    assert service["LoadCredential"] == ["backup-password:@SECRETS_DIR@/backup-password"]
    # the default repository is a state directory of the unit (ProtectSystem=strict elsewhere)
    assert "collabry-backup" in service["StateDirectory"][0].split()
    assert "COLLABRY_BACKUP_REPOSITORY=%S/collabry-backup/restic" in service["Environment"]
    # settings of /etc/collabry/collabry.env (read after Environment=) override the default
    unit = (UNITS / "collabry-backup.service").read_text()
    assert unit.index("Environment=COLLABRY_BACKUP_REPOSITORY") < unit.index("EnvironmentFile=")


@pytest.mark.parametrize(
    ("repository", "ok"),
    [
        ("/srv/backups/collabry", True),
        ("s3:https://s3.example.org/bucket/collabry", True),
        ("relative/path", False),
        ("s3:https://key:secret@s3.example.org/bucket", False),
    ],
)
def test_installer_checks_the_backup_repository(tmp_path: Path, repository: str, ok: bool) -> None:
    proc = subprocess.run(
        [str(REPO / "deploy/install.sh"), "--backup-repository", repository, "--render-units", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode == 0) == ok, proc.stderr
    assert ok or "--backup-repository must be" in proc.stderr


@pytest.mark.parametrize(
    ("args", "ok"),
    [
        (["--engine-replicas", "3", "--remote-engine", "http://10.0.0.6:8100"], True),
        (["--engine-replicas", "0"], False),
        (["--engine-replicas", "two"], False),
        (["--remote-engine", "http://user:pw@10.0.0.6:8100"], False),
        (["--remote-engine", "10.0.0.6:8100"], False),
    ],
)
def test_installer_checks_the_engine_options(tmp_path: Path, args: list[str], ok: bool) -> None:
    proc = subprocess.run(
        [str(REPO / "deploy/install.sh"), *args, "--render-units", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode == 0) == ok, proc.stderr
    assert ok or "engine" in proc.stderr


def test_processes_listen_on_loopback_only() -> None:
    for name in ("collabry-gateway@.service", "collabry-engine.service", "collabry-engine@.service",
                 "collabry-llm.service"):
        assert "--host 127.0.0.1 " in _parse(UNITS / name)["Service"]["ExecStart"][0], name
    assert "--listen-addr=127.0.0.1:" in _parse(UNITS / "ferretdb.service")["Service"]["ExecStart"][0]
    assert "listen_addresses = '127.0.0.1'" in (REPO / "deploy/collabry-postgresql-setup.in").read_text()
    redis = (REPO / "deploy/redis-collabry.conf").read_text()
    assert re.search(r"^bind 127\.0\.0\.1 -::1$", redis, re.M)
    assert re.search(r"^appendonly yes$", redis, re.M)
    assert re.search(r"^maxmemory-policy noeviction$", redis, re.M)


def test_only_known_placeholders() -> None:
    for path in [*UNITS.iterdir(), REPO / "deploy/collabry-admin.in"]:
        found = set(re.findall(r"@[A-Z_]+@", path.read_text()))
        assert found <= PLACEHOLDERS, f"{path.name}: {found - PLACEHOLDERS}"


def test_rendered_units_have_no_placeholders(root: Path) -> None:
    for path in (root / "etc/systemd/system").iterdir():
        if path.is_file():
            assert not re.search(r"@[A-Z_]+@", path.read_text()), path.name


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="no nginx")
def test_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    """The installer's site (upstreams from the replica list + nginx/ rules) is valid nginx."""
    site = subprocess.run(
        [
            str(REPO / "deploy/install.sh"),
            "--print-nginx-site",
            "--replicas",
            "3",
            "--listen",
            "127.0.0.1:18080",
            "--nginx-dir",
            str(REPO / "nginx"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert site.count("server 127.0.0.1:800") == 6, site  # three replicas in each upstream
    assert site.count("max_fails=0;") == 6, site
    (tmp_path / "logs").mkdir()
    (tmp_path / "site.conf").write_text(site)
    temp = " ".join(f"{k}_temp_path {tmp_path}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n {temp}\n include {tmp_path}/site.conf;\n}}\n"
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.run(
        [
            nginx,
            "-t",
            "-q",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            str(tmp_path / "logs/e.log"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


SCRIPTS = ["deploy/install.sh", "deploy/uninstall.sh", "deploy/rollout.sh", "scripts/build-rootfs.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_shell_scripts_parse(script: str) -> None:
    path = REPO / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck() -> None:
    paths = [str(REPO / s) for s in SCRIPTS]
    proc = subprocess.run(["shellcheck", "-S", "warning", *paths], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", "-S", "warning", str(REPO / "deploy/collabry-admin.in")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
