#!/usr/bin/env bash
# Every test: lint, unit, integration (real Redis, FerretDB, nginx, subprocess services), static
# checks of the deployment files, and the system tests under a real systemd (systemd-nspawn).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${COLLABRY_VENV:-$ROOT/.venv}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export PYTHONUNBUFFERED=1

"$VENV/bin/ruff" check src tests
"$VENV/bin/mypy"  # strict, on src/collabry (pyproject.toml)
# The web front end's own logic (token refresh, SSE parsing and resume): type check and unit tests.
(cd frontend && npx --no-install tsc --noEmit && npx --no-install vitest run --reporter=dot)
# In CI a missing system-test tool is a failure, not a skip.
if [ "${CI:-}" = true ]; then export COLLABRY_SYSTEM_TESTS=${COLLABRY_SYSTEM_TESTS:-require}; fi
set +e
"$VENV/bin/pytest" -q -p no:cacheprovider "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a broken selection, not a pass.
if [ "$rc" -eq 5 ]; then
  echo "no tests were collected" >&2
  exit 1
fi
exit "$rc"
