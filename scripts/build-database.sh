#!/usr/bin/env bash
# Builds what Debian 12 lacks for the database (PostgreSQL 15 + DocumentDB, FerretDB v2 in front):
# libbson 1.28 (static, private), pg_cron 1.6, pgvector and DocumentDB, installed into PostgreSQL's
# own directories, and the FerretDB binary. Each build happens once: the installed tree is kept as
# a tarball under ${XDG_CACHE_HOME:-~/.cache}/collabry/database and re-applied in seconds.
#
# Sources: the archives in $COLLABRY_SOURCES_DIR (default ../shared/sources next to the project)
# when that folder exists, otherwise the same upstream tags downloaded; either way checked against
# scripts/database-sources.sha256 before use. Why each step is as it is: docs/database.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/collabry
PG_MAJOR=${COLLABRY_PG_MAJOR:-15}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
SOURCES=${COLLABRY_SOURCES_DIR:-$ROOT/../shared/sources}
SUMS=$ROOT/scripts/database-sources.sha256
FERRETDB_VERSION=v2.5.0
FERRETDB_GO_TOOLCHAIN=go1.24.6   # what FerretDB v2.5.0's go.mod names; cmd/ferretdb fails on Go 1.25+
DOCUMENTDB_ARCHIVE=documentdb-0.106.0-ferretdb-2.5.0.tar.gz
LIBBSON_ARCHIVE=mongo-c-driver-1.28.0-libbson.tar.gz
PGCRON_ARCHIVE=pg_cron-1.6.3.tar.gz
PGVECTOR_ARCHIVE=pgvector-0.8.6.tar.gz
JOBS=${COLLABRY_BUILD_JOBS:-$(nproc)}

say() { printf '\033[1m[database]\033[0m %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

upstream_url() {
  case "$1" in
    "$DOCUMENTDB_ARCHIVE") echo "https://github.com/FerretDB/documentdb/archive/refs/tags/v0.106.0-ferretdb-2.5.0.tar.gz" ;;
    "$LIBBSON_ARCHIVE") echo "https://github.com/mongodb/mongo-c-driver/archive/refs/tags/1.28.0.tar.gz" ;;
    "$PGCRON_ARCHIVE") echo "https://github.com/citusdata/pg_cron/archive/refs/tags/v1.6.3.tar.gz" ;;
    "$PGVECTOR_ARCHIVE") echo "https://github.com/pgvector/pgvector/archive/refs/tags/v0.8.6.tar.gz" ;;
  esac
}

# A verified copy of one source archive in the cache.
fetch_source() {
  local name=$1 dest=$CACHE/sources/$1 want
  want=$(awk -v n="$name" '$2 == n {print $1}' "$SUMS")
  mkdir -p "$CACHE/sources"
  if [ ! -f "$dest" ] || [ "$(sha256sum "$dest" | cut -d' ' -f1)" != "$want" ]; then
    if [ -f "$SOURCES/$name" ]; then
      cp "$SOURCES/$name" "$dest.part"
    else
      say "downloading $(upstream_url "$name") ($SOURCES/$name is absent)"
      curl -fsSL --retry 3 -o "$dest.part" "$(upstream_url "$name")" || {
        echo "cannot download $name: put the archive into \$COLLABRY_SOURCES_DIR (now $SOURCES)" >&2
        exit 1
      }
    fi
    local got
    got=$(sha256sum "$dest.part" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
      rm -f "$dest.part"
      echo "checksum mismatch for $name: got $got, want $want" >&2
      exit 1
    fi
    mv "$dest.part" "$dest"
  fi
  echo "$dest"
}

# --- Debian packages --------------------------------------------------------------------------
need=()
for pkg in "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "postgresql-$PG_MAJOR-rum" \
           "postgresql-$PG_MAJOR-postgis-3" libintelrdfpmath-dev libpcre2-dev libkrb5-dev libicu-dev \
           pkgconf systemtap-sdt-dev cmake build-essential curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's postgresql package starts a cluster of its own; the appliance runs its own instances.

# --- PostgreSQL extensions: pg_cron, pgvector, DocumentDB ---------------------------------------
key=$(cat "$SUMS" "${BASH_SOURCE[0]}" <("$PG_CONFIG" --version) | sha256sum | cut -c1-16)
tarball=$CACHE/database/extensions-$key.tar.gz
pkglibdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
if [ ! -f "$tarball" ]; then
  say "building libbson 1.28, pg_cron 1.6.3, pgvector 0.8.6 and DocumentDB 0.106 (once, ~5-10 minutes on 2 cores)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  stage=$work/stage
  for archive in "$LIBBSON_ARCHIVE" "$PGCRON_ARCHIVE" "$PGVECTOR_ARCHIVE" "$DOCUMENTDB_ARCHIVE"; do
    tar -xzf "$(fetch_source "$archive")" -C "$work"
  done
  # Debian's libbson is 1.23, which lacks BSON_SUBTYPE_SENSITIVE: build 1.28 statically, privately.
  say "[1/4] libbson"
  cmake -S "$work/mongo-c-driver-1.28.0" -B "$work/bson-build" -DENABLE_MONGOC=OFF -DENABLE_TESTS=OFF \
    -DENABLE_EXAMPLES=OFF -DENABLE_STATIC=ON -DENABLE_SHARED=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$work/bson" >"$work/bson.log" 2>&1 \
    || { tail -30 "$work/bson.log"; exit 1; }
  cmake --build "$work/bson-build" -j "$JOBS" --target install >>"$work/bson.log" 2>&1 \
    || { tail -30 "$work/bson.log"; exit 1; }
  # DocumentDB asks pkg-config for libbson-static-1.0 and intelmathlib; Debian's
  # libintelrdfpmath-dev ships no .pc file.
  mkdir -p "$work/pkgconfig"
  printf 'Name: intelmathlib\nDescription: Intel decimal floating point\nVersion: 2.0\nCflags: -I/usr/include\nLibs: -lbidgcc000\n' \
    > "$work/pkgconfig/intelmathlib.pc"
  export PKG_CONFIG_PATH="$work/pkgconfig:$(find "$work/bson" -name pkgconfig -type d | tr '\n' ':')"
  # pg_cron: Debian's 1.4 rejects the '2 seconds' schedule that CREATE EXTENSION documentdb registers.
  say "[2/4] pg_cron"
  make -C "$work/pg_cron-1.6.3" -j "$JOBS" PG_CONFIG="$PG_CONFIG" >"$work/cron.log" 2>&1 \
    && make -C "$work/pg_cron-1.6.3" PG_CONFIG="$PG_CONFIG" DESTDIR="$stage" install >>"$work/cron.log" 2>&1 \
    || { tail -30 "$work/cron.log"; exit 1; }
  say "[3/4] pgvector"
  make -C "$work/pgvector-0.8.6" -j "$JOBS" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >"$work/vector.log" 2>&1 \
    && make -C "$work/pgvector-0.8.6" PG_CONFIG="$PG_CONFIG" DESTDIR="$stage" install >>"$work/vector.log" 2>&1 \
    || { tail -30 "$work/vector.log"; exit 1; }
  say "[4/4] DocumentDB (the longest step)"
  ddb=$work/documentdb-0.106.0-ferretdb-2.5.0
  for sub in pg_documentdb_core pg_documentdb; do
    make -C "$ddb/$sub" -j "$JOBS" PG_CONFIG="$PG_CONFIG" with_llvm=no >"$work/$sub.log" 2>&1 \
      && make -C "$ddb/$sub" PG_CONFIG="$PG_CONFIG" with_llvm=no DESTDIR="$stage" install >>"$work/$sub.log" 2>&1 \
      || { tail -40 "$work/$sub.log"; exit 1; }
  done
  mkdir -p "$CACHE/database"
  tar -czf "$tarball.part" -C "$stage" . && mv "$tarball.part" "$tarball"
  rm -rf "$work"
  trap - EXIT
fi
if [ ! -f "$pkglibdir/pg_documentdb.so" ] || [ ! -f "$sharedir/extension/documentdb.control" ] \
   || [ "$(cat "$sharedir/extension/.collabry-stamp" 2>/dev/null)" != "$key" ]; then
  say "installing the database extensions into $pkglibdir"
  $SUDO tar -xzf "$tarball" -C / --no-same-owner
  echo "$key" | $SUDO tee "$sharedir/extension/.collabry-stamp" >/dev/null
fi

# --- FerretDB v2 ---------------------------------------------------------------------------------
FERRETDB_BIN=$CACHE/bin/ferretdb2
ferretdb_version=$("$FERRETDB_BIN" --version 2>/dev/null || true)
if [[ "$ferretdb_version" != *"version: ${FERRETDB_VERSION}"* ]]; then
  say "building FerretDB ${FERRETDB_VERSION} with ${FERRETDB_GO_TOOLCHAIN} (once)"
  export PATH="$PATH:/usr/local/go/bin"
  src=$(GOTOOLCHAIN=$FERRETDB_GO_TOOLCHAIN GOFLAGS=-mod=mod go mod download -json \
        "github.com/FerretDB/FerretDB/v2@${FERRETDB_VERSION}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  work=$(mktemp -d)
  cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
  # `go install` leaves build/version/version.txt empty and the binary refuses to start.
  echo "${FERRETDB_VERSION}" > "$work/src/build/version/version.txt"
  mkdir -p "$CACHE/bin"
  (cd "$work/src" && GOTOOLCHAIN=$FERRETDB_GO_TOOLCHAIN CGO_ENABLED=0 go build -trimpath -o "$FERRETDB_BIN" ./cmd/ferretdb)
  rm -rf "$work"
fi
say "database ready: PostgreSQL $PG_MAJOR + DocumentDB, FerretDB ${FERRETDB_VERSION}"
