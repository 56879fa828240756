#!/usr/bin/env bash
# Rolling deploy for a non-Nix Collabry host (installed by deploy/install.sh).
#
#   rollout.sh --to RELEASE   switch PREFIX/current to PREFIX/releases/RELEASE, then restart
#                             one process at a time, each gated; roll back if a gate fails
#   rollout.sh --rollback     the same, to the release PREFIX/previous points at
#   rollout.sh --restart      rolling restart of the current release (no switch)
#   rollout.sh --check        run the gates against what is running, change nothing
#
# Options: --prefix DIR (default /opt/collabry), --ready-timeout SECONDS (default 60),
#          --smoke URL (repeatable; must answer 2xx after each gateway; default: nginx's /health
#          when the nginx site is installed on a plain port), --settle SECONDS (default 2: pause
#          after each replica so the proxy has reconnected before the next one stops).
# Smoke checks per replica: /health, /api/openapi.json, and a login round trip when
# /etc/collabry/secrets/smoke-login.json exists ({"email": ..., "password": ...} of a test account).
#
# Order: migrations (collabry-migrate.service, new code), the local model server and the engine
# if running, then the gateway replicas one at a time. A replica is back in service only when
# systemd has its READY=1, its /ready answers 200 and the smoke URLs answer; while it restarts
# (it drains in-flight requests first) nginx sends traffic to the others. When a gate fails,
# current is switched back and every process restarted so far is restarted on the old release.
# The worker is a oneshot started by its timer: its next run uses the new release.
#
# Exit status: 0 done; 1 a gate failed and the previous release is serving again; 2 the rollback
# failed too (look at `systemctl status 'collabry-*'`); 64 usage.
set -euo pipefail

PREFIX=/opt/collabry
READY_TIMEOUT=60
SETTLE=2
ACTION=
TARGET=
SMOKE=()
SMOKE_SET=0
CONF=/etc/collabry/install.conf
SMOKE_LOGIN=/etc/collabry/secrets/smoke-login.json
ENGINE_PORT=8100

log() { printf '%s rollout: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --prefix) PREFIX=$2; shift 2 ;;
    --to) ACTION=switch; TARGET=$2; shift 2 ;;
    --rollback) ACTION=rollback; shift ;;
    --restart) ACTION=restart; shift ;;
    --check) ACTION=check; shift ;;
    --ready-timeout) READY_TIMEOUT=$2; shift 2 ;;
    --smoke) SMOKE+=("$2"); SMOKE_SET=1; shift 2 ;;
    --settle) SETTLE=$2; shift 2 ;;
    -h|--help) usage ;;
    *) log "unknown option $1"; usage ;;
  esac
done
[[ -n $ACTION ]] || usage
[[ $(id -u) == 0 ]] || { log "must run as root"; exit 64; }

if [[ $SMOKE_SET == 0 && -r $CONF ]]; then
  listen=$(sed -n 's/^listen=//p' "$CONF")
  if grep -qx 'nginx=1' "$CONF" && [[ $listen =~ ^[0-9]+$ ]]; then
    SMOKE=("http://127.0.0.1:$listen/health")
  fi
fi

exec 9>"$PREFIX/.rollout.lock"
flock -n 9 || { log "another rollout is running"; exit 64; }

current_release() { basename "$(readlink "$PREFIX/current")"; }
switch_to() { # atomically point current at releases/$1
  ln -sfn "releases/$1" "$PREFIX/.current.new"
  mv -T "$PREFIX/.current.new" "$PREFIX/current"
}
active() { systemctl is-active --quiet "$1"; }
gateways() {
  systemctl list-units --plain --no-legend --state=active 'collabry-gateway@*.service' |
    awk '{print $1}' | sort -t@ -k2 -n
}
# the extra engines of this host (collabry-engine@PORT beside collabry-engine.service)
engines() {
  systemctl list-units --plain --no-legend --state=active 'collabry-engine@*.service' |
    awk '{print $1}' | sort -t@ -k2 -n
}
port_of() { local p=${1#*@}; echo "${p%.service}"; }

wait_ready() { # wait_ready PORT: /ready 200 within READY_TIMEOUT
  local deadline=$((SECONDS + READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    if curl -fsS -o /dev/null -m 3 "http://127.0.0.1:$1/ready" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  log "127.0.0.1:$1/ready did not answer 200 within ${READY_TIMEOUT}s"
  return 1
}
smoke() { # smoke PORT: the replica itself, then the public URLs
  local path url
  for path in /health /api/openapi.json; do
    curl -fsS -o /dev/null -m 5 "http://127.0.0.1:$1$path" || { log "127.0.0.1:$1$path failed"; return 1; }
  done
  # A login round trip when the operator keeps a smoke account: {"email": ..., "password": ...}.
  if [[ -s $SMOKE_LOGIN ]]; then
    curl -fsS -o /dev/null -m 10 -H 'Content-Type: application/json' --data-binary "@$SMOKE_LOGIN" \
      "http://127.0.0.1:$1/api/auth/login" || { log "login with $SMOKE_LOGIN on 127.0.0.1:$1 failed"; return 1; }
  fi
  # Public URLs get a few tries: right after `systemctl reload nginx` old workers may still answer
  # with the previous configuration for a moment.
  for url in "${SMOKE[@]}"; do
    curl -fsS -o /dev/null -m 10 --retry 5 --retry-delay 1 --retry-all-errors "$url" \
      || { log "smoke check $url failed"; return 1; }
  done
}
# gate UNIT: restart, then the unit must be active; the engine must answer /ready, a gateway
# must answer /ready and pass the smoke checks.
gate() {
  log "restarting $1"
  if ! systemctl restart "$1"; then
    log "$1 failed to start"; return 1
  fi
  active "$1" || { log "$1 is not active after restart"; return 1; }
  case $1 in
    collabry-gateway@*) wait_ready "$(port_of "$1")" && smoke "$(port_of "$1")" || return 1 ;;
    collabry-engine.service) wait_ready "$ENGINE_PORT" || return 1 ;;
    collabry-engine@*) wait_ready "$(port_of "$1")" || return 1 ;;
  esac
  log "$1 is back in service"
}
migrate() {
  systemctl cat collabry-migrate.service >/dev/null 2>&1 || return 0
  log "running migrations"
  systemctl restart collabry-migrate.service || { log "migrations failed"; return 1; }
}

# Every process restarted in this run, in order, so a rollback can restart the same ones.
restarted=()
roll() { # restart everything one at a time; returns 1 at the first failed gate
  migrate || return 1
  local unit
  for unit in collabry-llm.service collabry-engine.service "${eng[@]}"; do
    if active "$unit"; then restarted+=("$unit"); gate "$unit" || return 1; fi
  done
  for unit in "${gw[@]}"; do
    restarted+=("$unit"); gate "$unit" || return 1
    sleep "$SETTLE"
  done
}

rollback_to() { # rollback_to RELEASE
  log "ROLLING BACK to release $1"
  switch_to "$1"
  local failed=0 unit
  migrate || failed=1
  for unit in "${restarted[@]}"; do gate "$unit" || failed=1; done
  if ((failed)); then log "rollback to $1 FAILED: manual intervention needed"; exit 2; fi
  log "release $1 is serving again"
  exit 1
}

mapfile -t gw < <(gateways)
mapfile -t eng < <(engines)
if [[ $ACTION == check ]]; then
  ok=0
  for unit in "${gw[@]}"; do wait_ready "$(port_of "$unit")" && smoke "$(port_of "$unit")" || ok=1; done
  if active collabry-engine.service; then wait_ready "$ENGINE_PORT" || ok=1; fi
  for unit in "${eng[@]}"; do wait_ready "$(port_of "$unit")" || ok=1; done
  ((ok == 0)) && log "all ${#gw[@]} gateways ready (release $(current_release))"
  exit $ok
fi

old=$(current_release)
case $ACTION in
  switch) new=$TARGET ;;
  rollback)
    [[ -L $PREFIX/previous ]] || { log "no previous release recorded"; exit 64; }
    new=$(basename "$(readlink "$PREFIX/previous")") ;;
  restart) new=$old ;;
esac
[[ -x $PREFIX/releases/$new/venv/bin/collabry ]] || { log "release $new is missing or incomplete"; exit 64; }
((${#gw[@]})) || log "no gateway is running; switching anyway"

log "release $old -> $new (${#gw[@]} gateways)"
systemctl daemon-reload
[[ $new != "$old" ]] && switch_to "$new"
if ! roll; then
  [[ $new == "$old" ]] && { log "restart of release $old failed"; exit 2; }
  rollback_to "$old"
fi
if [[ $new != "$old" ]]; then
  ln -sfn "releases/$old" "$PREFIX/.previous.new"
  mv -T "$PREFIX/.previous.new" "$PREFIX/previous"
fi
log "release $new is serving"
