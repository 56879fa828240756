"""The appliance under a real systemd: installed with deploy/install.sh into a Debian container,
booted with systemd-nspawn, exercised with the shared scenarios (tests/system/scenarios.py).

The tests share one container and run in file order; each leaves the appliance healthy.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from . import scenarios
from .conftest import PORTS, PREFIX
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
