"""The appliance under a real systemd: installed with deploy/install.sh into a Debian container,
booted with systemd-nspawn, exercised with the shared scenarios (tests/system/scenarios.py).

The tests share one container and run in file order; each leaves the appliance healthy.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from typing import Any

import pytest

from . import scenarios
from .conftest import LOKI_ENDPOINT, PORTS, PREFIX, REPO
from .nspawn import Machine

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]


def test_units_are_wired_as_designed(appliance: Machine) -> None:
    scenarios.check_wiring(appliance, PORTS)


def test_register_and_login_through_nginx(appliance: Machine, state: dict[str, Any]) -> None:
    state["account"] = scenarios.register_and_login(appliance)


def test_stop_drains_a_request_in_flight(appliance: Machine) -> None:
    result = scenarios.drain_on_stop(appliance, PORTS[0])
    assert scenarios.journal_has(appliance, scenarios.gateway_unit(PORTS[0]), "draining"), result


def test_rolling_restart_under_load_fails_no_request(appliance: Machine, state: dict[str, Any]) -> None:
    account = state.get("account")
    if account:  # the rollout's smoke checks log in with this account on every replica
        body = json.dumps({"email": account["email"], "password": account["password"]})
        appliance.succeed(f"umask 077; printf %s {shlex.quote(body)} > /etc/collabry/secrets/smoke-login.json")
    token = account["token"] if account else None
    stats = scenarios.rolling_restart_under_load(appliance, PORTS, f"{PREFIX}/rollout.sh --restart", token)
    print("rolling restart load:", stats)


def test_upgrade_and_rollback_switch_releases_under_load(appliance: Machine, state: dict[str, Any]) -> None:
    """Running the installer again builds a new release and rolls it out replica by replica;
    `rollout.sh --rollback` returns to the previous one the same way. No client request fails."""
    token = state.get("account", {}).get("token")
    first = appliance.succeed(f"readlink {PREFIX}/current").strip()
    secret = appliance.succeed("sha256sum /etc/collabry/secrets/jwt-secret")
    upgrade = "/mnt/src/deploy/install.sh --no-apt --wheelhouse /mnt/wheelhouse --wheelhouse /mnt/wheels"
    stats = scenarios.rolling_restart_under_load(appliance, PORTS, upgrade, token)
    second = appliance.succeed(f"readlink {PREFIX}/current").strip()
    assert second != first and appliance.succeed(f"readlink {PREFIX}/previous").strip() == first
    assert appliance.succeed("sha256sum /etc/collabry/secrets/jwt-secret") == secret
    print("upgrade load:", stats)
    stats = scenarios.rolling_restart_under_load(appliance, PORTS, f"{PREFIX}/rollout.sh --rollback", token)
    assert appliance.succeed(f"readlink {PREFIX}/current").strip() == first
    assert appliance.succeed(f"readlink {PREFIX}/previous").strip() == second
    print("rollback load:", stats)


def test_failed_gate_rolls_back_to_the_previous_release(appliance: Machine, state: dict[str, Any]) -> None:
    token = state.get("account", {}).get("token")
    result = scenarios.rollback_on_failed_gate(appliance, PORTS, token, prefix=PREFIX)
    print("rollback load:", result["load"])


def test_worker_timer_runs_each_slot_once(appliance: Machine, state: dict[str, Any]) -> None:
    state["ledger"] = scenarios.worker_runs_once_per_slot(appliance)


def test_backup_to_restic_and_restore_bring_deleted_data_back(appliance: Machine, state: dict[str, Any]) -> None:
    """collabry-backup.service (restic, the default local repository) saves a notebook with a
    source; after they are deleted, `collabry-admin backups restore --drop` brings them back. Runs
    after the worker test: the restore puts the database back as it was at the backup, so what the
    later tests check (the account, the worker ledger) must be in the snapshot."""
    assert appliance.succeed("restic version").startswith("restic ")
    assert scenarios.unit_property(appliance, "collabry-backup.timer", "UnitFileState") == "enabled"
    result = scenarios.backup_and_restore(appliance, PORTS)
    state["backup"] = result
    print("backup and restore:", {k: v for k, v in result.items() if k != "account"})


def test_log_shipping_config_selects_the_appliance_journal(appliance: Machine) -> None:
    """`install.sh --loki-endpoint` wrote deploy/vector.toml with the endpoint; the journal entries
    its source selects (the units' slice) are there, and its remap program (Vector's VRL, via
    vrl-python) turns them into events with the unit, the host and each JSON line's own fields.
    Vector itself is not a Debian 12 package, so it does not run here (docs/operations.md)."""
    from vrl_python import VRLRuntime

    assert appliance.succeed("stat -c '%a %U' /etc/collabry/vector.toml").strip() == "644 root"
    written = tomllib.loads(appliance.succeed("cat /etc/collabry/vector.toml"))
    expected = tomllib.loads((REPO / "deploy/vector.toml").read_text())
    expected["sinks"]["loki"]["endpoint"] = LOKI_ENDPOINT
    assert written == expected
    (slice_name,) = written["sources"]["collabry_journal"]["include_matches"]["_SYSTEMD_SLICE"]
    units = [scenarios.gateway_unit(p) for p in PORTS] + [
        "collabry-engine.service",
        "collabry-worker.service",
        "collabry-backup.service",
        "ferretdb.service",
    ]
    for unit in units:
        assert scenarios.unit_property(appliance, unit, "Slice") == slice_name, unit
    entries = scenarios.journal_entries_for_shipping(appliance, slice_name)
    program = written["transforms"]["collabry_logs"]["source"]
    shipped = [dict(VRLRuntime.run(program, e, "UTC").processed_event) for e in entries]
    hostname = appliance.succeed("hostname").strip()
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for event in shipped:
        assert event["host"] == hostname and event["timestamp"], event
        assert not {"_PID", "_CMDLINE", "_UID"} & set(event), event
        by_unit.setdefault(event["unit"], []).append(event)
    for unit in (scenarios.gateway_unit(PORTS[0]), "collabry-engine.service"):
        assert any("event" in e and "level" in e for e in by_unit.get(unit, [])), (unit, sorted(by_unit))
    print("log shipping: events per unit", {u: len(v) for u, v in sorted(by_unit.items())})


def test_restart_of_the_machine_keeps_data(appliance: Machine, state: dict[str, Any]) -> None:
    account = state.get("account")
    if account is None:
        pytest.fail("needs the account registered by test_register_and_login_through_nginx")
    token = scenarios.login(appliance, account)
    secret = appliance.succeed("sha256sum /etc/collabry/secrets/jwt-secret")
    appliance.shutdown()
    appliance.start()
    scenarios.wait_for_appliance(appliance, PORTS)
    assert appliance.succeed("sha256sum /etc/collabry/secrets/jwt-secret") == secret
    scenarios.data_survives_restart(appliance, account, token, state.get("ledger"))


def test_uninstall_keeps_data_unless_purged(appliance: Machine) -> None:
    appliance.succeed(f"{PREFIX}/uninstall.sh")
    # Nothing of ours is loaded from a file or running any more. (systemd may keep a stopped unit's
    # object as "not-found inactive" for a while; that is no unit file and no process.)
    files = appliance.succeed("systemctl list-unit-files --no-legend 'collabry*' 'ferretdb*' | awk '{print $1}'")
    assert not files.strip(), files
    live = appliance.succeed(
        "systemctl list-units --all --plain --no-legend 'collabry*' 'ferretdb*' | awk '$3 != \"inactive\" {print $1}'"
    )
    assert not live.strip(), live
    appliance.fail("test -e /etc/systemd/system/collabry-gateway@.service", f"test -e {PREFIX}")
    appliance.succeed(
        "test -s /etc/collabry/secrets/jwt-secret",
        "test -d /var/lib/collabry",
        "test -s /var/lib/collabry-postgresql/data/PG_VERSION",
    )
    appliance.succeed("systemctl is-active nginx redis-server")
    appliance.succeed("/mnt/src/deploy/uninstall.sh --purge")
    appliance.fail("test -e /etc/collabry", "test -e /var/lib/collabry", "getent passwd collabry")


def test_first_install_on_a_running_host_starts_everything(appliance: Machine) -> None:
    """The installer on a booted host (after the purge above): starts Redis, the database, the units
    and nginx itself and returns once every gateway is ready."""
    appliance.succeed(
        "/mnt/src/deploy/install.sh --no-apt --wheelhouse /mnt/wheelhouse --wheelhouse /mnt/wheels "
        "--ferretdb-bin /mnt/ferretdb",
        timeout=600,
    )
    for port in PORTS:
        appliance.succeed(f"curl -fsS -m 5 http://127.0.0.1:{port}/ready")
    scenarios.wait_for_appliance(appliance, PORTS)
    scenarios.register_and_login(appliance)
