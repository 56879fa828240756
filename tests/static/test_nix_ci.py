"""The networked CI workflow and the Compose deployment, checked without a network or a Docker engine.

- .github/workflows/*.yml: actionlint (pinned in scripts/bootstrap.sh --test; it runs shellcheck
  on the `run:` scripts), and the jobs docs/nix.md promises are there.
- deploy/compose.yaml: compose-go, the loader Docker Compose itself uses (tests/static/composecheck,
  pinned by its go.sum), validates it against the Compose Specification schema and its semantics;
  a broken copy must fail. Its nginx part passes `nginx -t` with the repository's nginx rules.
  The images it runs are the ones nix/images.nix builds, as the unprivileged user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
COMPOSE = REPO / "deploy" / "compose.yaml"
CACHE_BIN = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "collabry" / "bin"


def _tool(name: str) -> str:
    path = CACHE_BIN / name
    if path.is_file():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `scripts/bootstrap.sh --test` builds it into {CACHE_BIN}")
    return found


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, **kw)  # type: ignore[call-overload,no-any-return]


# --- the workflow --------------------------------------------------------------------------------


def test_workflows_lint_clean() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert files
    out = _run([_tool("actionlint"), "-no-color", *map(str, files)], cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text((WORKFLOWS / "nix.yml").read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04", 1))
    out = _run([_tool("actionlint"), "-no-color", str(bad)], cwd=tmp_path)
    assert out.returncode != 0 and "runs-on" in out.stdout


def test_workflow_runs_what_docs_say_only_networked_ci_proves() -> None:
    flow = yaml.safe_load((WORKFLOWS / "nix.yml").read_text())
    steps = {
        job: "\n".join(step.get("run", "") + step.get("uses", "") for step in body["steps"])
        for job, body in flow["jobs"].items()
    }
    assert "make test" in steps["make-test"]
    assert "nix flake check -L" in steps["flake-check"]
    assert "kvm" in steps["flake-check"] and "/dev/kvm" in steps["flake-check"]
    images = steps["images"]
    for role in ("gateway", "engine", "worker"):
        assert "${role}-image" in images or f"{role}-image" in images
    assert "docker load" in images and "docker compose -f deploy/compose.yaml up" in images
    assert "/health" in images and "Health.Status" in images
    # every action is pinned to a release
    for body in flow["jobs"].values():
        for step in body["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


# --- the Compose deployment ----------------------------------------------------------------------


def _compose_env(tmp: Path) -> list[str]:
    return ["-env", f"COLLABRY_SECRETS_DIR={tmp}"]


def test_compose_file_is_valid(tmp_path: Path) -> None:
    out = _run([_tool("composecheck"), *_compose_env(tmp_path), str(COMPOSE)], cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("compose.yaml: ok")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    image: redis:7.4-alpine", "    imagee: redis:7.4-alpine"), "imagee"),
        (("    secrets: [postgres-password]", "    secrets: [postgres-passwd]"), "undefined secret"),
        (("    depends_on:\n      migrate:\n", "    depends_on:\n      migrat:\n"), "undefined service"),
    ],
    ids=["unknown-key", "undeclared-secret", "unknown-dependency"],
)
def test_compose_checker_catches_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = COMPOSE.read_text()
    assert change[0] in text
    broken = COMPOSE.parent / f".broken-{tmp_path.name}.yaml"
    try:
        broken.write_text(text.replace(change[0], change[1], 1))
        out = _run([_tool("composecheck"), *_compose_env(tmp_path), str(broken)], cwd=REPO)
    finally:
        broken.unlink()
    assert out.returncode != 0 and message in out.stderr, out.stdout + out.stderr


def test_compose_runs_the_nix_images_unprivileged_with_file_secrets() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    images = (REPO / "nix" / "images.nix").read_text()
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version
    services = compose["services"]
    for name in ("gateway1", "gateway2", "engine", "worker", "migrate"):
        service = services[name]
        role = "gateway" if name.startswith(("gateway", "migrate")) else name
        assert f'role = "{role}";' in images
        assert service["image"] == f"collabry-{role}:${{COLLABRY_VERSION:-{version.group(1)}}}"
        assert service["user"] == "65532:65532" and service["pull_policy"] == "never"
        env = service["environment"]
        for secret in ("jwt-secret", "service-token", "webhook-secret", "database-uri"):
            var = "COLLABRY_" + secret.upper().replace("-", "_")
            assert var not in env and env[var + "_FILE"] == f"/run/secrets/{secret}"
            assert secret in service["secrets"]
    # the three images, Redis, PostgreSQL with DocumentDB, FerretDB v2, nginx
    assert services["postgres"]["image"].startswith("ghcr.io/ferretdb/postgres-documentdb:17-0.106.0-ferretdb-2.5.0")
    assert services["ferretdb"]["image"] == "ghcr.io/ferretdb/ferretdb:2.5.0"
    ferret = services["ferretdb"]["environment"]
    # FerretDB listens on the compose network: authentication stays on
    assert ferret["FERRETDB_LISTEN_ADDR"] == "0.0.0.0:27017" and "FERRETDB_AUTH" not in ferret
    assert "FERRETDB_POSTGRESQL_URL" not in ferret and ferret["FERRETDB_POSTGRESQL_URL_FILE"]
    assert services["redis"]["image"].startswith("redis:") and "noeviction" in services["redis"]["command"]
    nginx_address = services["nginx"]["networks"]["backend"]["ipv4_address"]
    assert nginx_address == services["gateway1"]["environment"]["COLLABRY_TRUSTED_PROXIES"]


def test_compose_secrets_script_writes_every_declared_secret(tmp_path: Path) -> None:
    out = _run([str(REPO / "deploy" / "compose-secrets.sh"), str(tmp_path)])
    assert out.returncode == 0, out.stderr
    declared = set(yaml.safe_load(COMPOSE.read_text())["secrets"])
    assert {p.name for p in tmp_path.iterdir()} == declared
    password = (tmp_path / "postgres-password").read_text()
    assert (tmp_path / "database-uri").read_text() == f"mongodb://collabry:{password}@ferretdb:27017/"
    assert all(oct(p.stat().st_mode)[-3:] == "600" for p in tmp_path.iterdir())


def test_compose_nginx_configuration_passes_nginx_t(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    # the containers' names resolve on the compose network only
    server = (REPO / "deploy" / "compose-nginx.conf").read_text()
    server = server.replace("gateway1:8001", "127.0.0.1:8001").replace("gateway2:8001", "127.0.0.1:8002")
    server = server.replace("/etc/nginx/collabry/locations.conf", str(REPO / "nginx" / "locations.conf"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n"
        f"include {REPO}/nginx/http.conf;\n{server}\n}}\n"
    )
    out = _run([nginx, "-t", "-q", "-c", str(conf), "-p", str(tmp_path), "-e", "stderr"])
    assert out.returncode == 0, out.stderr
