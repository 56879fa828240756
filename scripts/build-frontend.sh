#!/usr/bin/env bash
# Builds the web front end (frontend/) into frontend/dist, which nginx serves at /.
# Quick when nothing changed: the build is stamped with a hash of the lockfile, the sources and
# the Node version, and `npm ci` runs only when package-lock.json changed (npm's own cache,
# ~/.npm, keeps the downloads).
#   scripts/build-frontend.sh           build if needed
#   scripts/build-frontend.sh --force   build anyway
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FRONT=$ROOT/frontend
DIST=$FRONT/dist
say() { printf '\033[1m[frontend]\033[0m %s\n' "$*" >&2; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ -f "$DIST/index.html" ]; then
    say "node/npm not found: serving the existing build in $DIST"
    exit 0
  fi
  say "node (>= 20.19) and npm are needed to build the web front end"
  exit 1
fi
node_version=$(node --version)
major=${node_version#v}; major=${major%%.*}
minor=${node_version#v*.}; minor=${minor%%.*}
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
  say "node $node_version is too old: the build needs node >= 20.19"
  exit 1
fi

cd "$FRONT"
# node_modules (also what the unit tests run with) follows the lockfile
lock=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.collabry-lock 2>/dev/null)" != "$lock" ]; then
  say "installing the locked npm packages (npm ci)"
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error
  echo "$lock" > node_modules/.collabry-lock
fi
stamp=$({
  echo "$node_version"
  cat package.json package-lock.json .npmrc index.html vite.config.ts tsconfig.json
  find src public -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
if [ "${1:-}" != "--force" ] && [ -f "$DIST/index.html" ] && [ "$(cat "$DIST/.build-stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi

say "building the web front end"
npm run --silent build -- --logLevel warn
echo "$stamp" > "$DIST/.build-stamp"
say "built $DIST"
