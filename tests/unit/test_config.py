from __future__ import annotations

import subprocess
import sys

import pytest

from collabry.config import EX_CONFIG, ConfigError, Rule, load_settings


def secret_file(tmp_path, name, value):
    path = tmp_path / name
    path.write_text(value + "\n")
    return str(path)


def test_defaults_are_production():
    s = load_settings({})
    assert s.mode == "production" and s.log_format == "json"
    assert s.global_limit == Rule(100, 900)
    assert s.global_fail_open and not s.login_fail_open


def test_secret_from_file_and_credentials_directory(tmp_path):
    s = load_settings({"COLLABRY_JWT_SECRET_FILE": secret_file(tmp_path, "j", "x" * 40)}, require=("jwt-secret",))
    assert s.jwt_secret == "x" * 40
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "jwt-secret").write_text("y" * 40)
    s = load_settings({"CREDENTIALS_DIRECTORY": str(creds)}, require=("jwt-secret",))
    assert s.jwt_secret == "y" * 40
    assert "y" * 40 not in repr(s)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"COLLABRY_JWT_SECRET": "inline"}, "COLLABRY_JWT_SECRET"),
        ({"COLLABRY_MODE": "staging"}, "COLLABRY_MODE"),
        ({"COLLABRY_GLOBAL_LIMIT": "lots"}, "COLLABRY_GLOBAL_LIMIT"),
        ({"COLLABRY_DRAIN_TIMEOUT": "-1"}, "COLLABRY_DRAIN_TIMEOUT"),
        ({"COLLABRY_TRUSTED_PROXIES": "10.0.0.0/8,nonsense"}, "COLLABRY_TRUSTED_PROXIES"),
        ({"COLLABRY_DATABASE_URI": "mongodb://u:pw@db/"}, "COLLABRY_DATABASE_URI"),
        ({"COLLABRY_REDIS_URL": "http://x"}, "COLLABRY_REDIS_URL"),
        ({"COLLABRY_JWT_SECRET_FILE": "/nonexistent/secret"}, "COLLABRY_JWT_SECRET_FILE"),
        ({}, "COLLABRY_JWT_SECRET_FILE"),
    ],
)
def test_bad_config_names_the_setting(env, setting):
    with pytest.raises(ConfigError) as info:
        load_settings(env, require=("jwt-secret",) if "JWT" in setting else ())
    assert info.value.setting == setting


def test_short_jwt_secret_refused(tmp_path):
    with pytest.raises(ConfigError):
        load_settings({"COLLABRY_JWT_SECRET_FILE": secret_file(tmp_path, "j", "short")})


def test_cli_exits_78_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "collabry.cli", "gateway", "--port", "1"],
        env={"PATH": "/usr/bin:/bin", "COLLABRY_MODE": "bogus"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == EX_CONFIG
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "COLLABRY_MODE" in lines[0]
