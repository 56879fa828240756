"""deploy/vector.toml, the log-shipping pipeline (journald -> remap -> Loki): its wiring, its remap
program compiled and run by Vector's own VRL compiler (vrl-python), and the installer's rendering.
The gateway's real log lines go through it in tests/integration/test_security_events.py."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from vrl_python import VRLRuntime

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy/vector.toml"


def config() -> dict[str, Any]:
    return tomllib.loads(CONFIG.read_text())


def remap(event: dict[str, Any]) -> dict[str, Any]:
    program = config()["transforms"]["collabry_logs"]["source"]
    return dict(VRLRuntime.run(program, event, "UTC").processed_event)


def journal_entry(message: str, **fields: str) -> dict[str, Any]:
    """An event as Vector's journald source emits it: the line in `message`, journal fields beside."""
    return {
        "message": message,
        "host": "app1",
        "timestamp": "2026-12-04T17:00:00.123456Z",
        "_SYSTEMD_UNIT": "collabry-gateway@8001.service",
        "_SYSTEMD_SLICE": "system-collabry.slice",
        "_CMDLINE": "/opt/collabry/current/venv/bin/python /opt/collabry/current/venv/bin/collabry gateway",
        "_PID": "4242",
        "_UID": "998",
        **fields,
    }


def test_pipeline_is_wired_from_the_journal_to_loki() -> None:
    cfg = config()
    source = cfg["sources"]["collabry_journal"]
    assert source["type"] == "journald"
    assert source["include_matches"] == {"_SYSTEMD_SLICE": ["system-collabry.slice"]}
    names = set(cfg["sources"]) | set(cfg["transforms"])
    for kind in ("transforms", "sinks"):
        for name, component in cfg[kind].items():
            assert component["inputs"] and set(component["inputs"]) <= names, (kind, name)
    assert cfg["transforms"]["collabry_logs"] == {**cfg["transforms"]["collabry_logs"], "type": "remap"}
    sink = cfg["sinks"]["loki"]
    assert sink["type"] == "loki" and sink["inputs"] == ["collabry_logs"]
    assert sink["encoding"] == {"codec": "json"} and sink["endpoint"] == "@LOKI_ENDPOINT@"
    # bounded labels only: request and user ids stay in the line
    assert set(sink["labels"]) == {"job", "unit", "host"}


def test_every_unit_runs_in_the_shipped_slice() -> None:
    for unit in (REPO / "systemd").glob("*.service"):
        assert "\nSlice=system-collabry.slice\n" in unit.read_text(), unit.name


def test_remap_program_compiles_with_vector_remap_language() -> None:
    program = config()["transforms"]["collabry_logs"]["source"]
    assert VRLRuntime.check_syntax(program) is None
    # the compiler is strict: an unhandled fallible call is refused, as Vector would at start
    assert VRLRuntime.check_syntax(". = parse_json(.message)") is not None


def test_json_lines_keep_their_fields_and_request_id_and_drop_journal_metadata() -> None:
    line = {
        "event": "request", "level": "info", "timestamp": "2026-12-04T17:00:00.100Z", "process": "gateway",
        "request_id": "3f2a9c", "route": "/api/notebooks", "status": 200, "user_id": "u1",
    }  # fmt: skip
    out = remap(journal_entry(json.dumps(line)))
    assert out["request_id"] == "3f2a9c" and out["route"] == "/api/notebooks" and out["status"] == 200
    assert out["unit"] == "collabry-gateway@8001.service" and out["host"] == "app1"
    assert out["timestamp"] == "2026-12-04T17:00:00.123456Z"  # the journal's time
    assert not {k for k in out if k.startswith("_")}, out  # no command lines, pids, uids
    assert "message" not in out


@pytest.mark.parametrize("message", ["LOG:  checkpoint starting: time", "[1, 2]", "{not json", ""])
def test_other_lines_are_shipped_as_their_text(message: str) -> None:
    out = remap(journal_entry(message, _SYSTEMD_UNIT="collabry-postgresql.service"))
    assert out == {
        "message": message, "unit": "collabry-postgresql.service", "host": "app1",
        "timestamp": "2026-12-04T17:00:00.123456Z",
    }  # fmt: skip


def test_an_entry_without_unit_still_gets_its_labels() -> None:
    entry = journal_entry('{"event": "x"}')
    del entry["_SYSTEMD_UNIT"], entry["host"]
    out = remap(entry)
    assert out["unit"] == "unknown" and out["host"] == "unknown"  # the sink's label templates resolve


def test_installer_renders_the_configuration_with_the_endpoint() -> None:
    install = str(REPO / "deploy/install.sh")
    proc = subprocess.run(
        [install, "--print-vector-config", "--loki-endpoint", "http://loki.internal:3100"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rendered = tomllib.loads(proc.stdout)
    assert rendered["sinks"]["loki"]["endpoint"] == "http://loki.internal:3100"
    expected = config()
    expected["sinks"]["loki"]["endpoint"] = "http://loki.internal:3100"
    assert rendered == expected
    for bad in ("http://user:secret@loki:3100", "loki:3100"):
        refused = subprocess.run([install, "--print-vector-config", "--loki-endpoint", bad],
                                 capture_output=True, text=True, check=False)  # fmt: skip
        assert refused.returncode != 0 and "--loki-endpoint must be" in refused.stderr
