#!/usr/bin/env bash
# Remove the Collabry appliance installed by deploy/install.sh.
#
#   uninstall.sh [--prefix /opt/collabry] [--purge]
#
# Stops and removes the units, the nginx site, the Redis include and the program (PREFIX).
# Keeps the data and the secrets (/var/lib/collabry, the database in /var/lib/collabry-postgresql, /etc/collabry, Redis'
# own data) unless --purge is given, which also removes those and the collabry user.
set -euo pipefail

PREFIX=
PURGE=0
CONF_DIR=/etc/collabry
STATE_DIR=/var/lib/collabry
UNIT_DIR=${COLLABRY_UNIT_DIR:-/etc/systemd/system}
MARKER="# Installed by collabry deploy/install.sh"

while [[ $# -gt 0 ]]; do
  case $1 in
    --prefix) PREFIX=$2; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall: unknown option $1" >&2; exit 64 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "uninstall: must run as root" >&2; exit 1; }
say() { echo "uninstall: $*" >&2; }
if [[ -z $PREFIX ]]; then
  PREFIX=$(sed -n 's/^prefix=//p' "$CONF_DIR/install.conf" 2>/dev/null || true)
  PREFIX=${PREFIX:-/opt/collabry}
fi
running=0
[[ -d /run/systemd/system ]] && running=1

# Units that this installer wrote carry the marker on their first line.
ours=()
for f in "$UNIT_DIR"/collabry* "$UNIT_DIR"/system-collabry.slice "$UNIT_DIR"/ferretdb.service; do
  [[ -f $f ]] && head -n1 "$f" | grep -q "^$MARKER" && ours+=("$(basename "$f")")
done
instances=()
for link in "$UNIT_DIR"/*.wants/collabry-gateway@*.service; do
  [[ -L $link ]] && instances+=("$(basename "$link")")
done
mapfile -t instances < <(printf '%s\n' "${instances[@]}" | sort -u | sed '/^$/d')

if ((running)); then
  say "stopping the appliance"
  systemctl stop collabry.target collabry-worker.timer 2>/dev/null || true
  systemctl stop 'collabry-*' 2>/dev/null || true
  for u in "${ours[@]}"; do [[ $u == ferretdb.service ]] && systemctl stop ferretdb.service || true; done
fi
to_disable=()
for u in "${instances[@]}" "${ours[@]}"; do [[ $u == *@.service ]] || to_disable+=("$u"); done
((${#to_disable[@]})) && { systemctl disable --quiet "${to_disable[@]}" 2>/dev/null || true; }
for u in "${ours[@]}"; do rm -f "$UNIT_DIR/$u"; done
rm -rf "$UNIT_DIR"/collabry*.d "$UNIT_DIR"/collabry.target.wants
if ((running)); then systemctl daemon-reload; systemctl reset-failed 'collabry-*' 2>/dev/null || true; fi

# nginx
if [[ -e /etc/nginx/sites-available/collabry ]]; then
  rm -f /etc/nginx/sites-enabled/collabry /etc/nginx/sites-available/collabry
  rm -rf /etc/nginx/collabry
  if [[ -e $CONF_DIR/.nginx-default-site-disabled && -e /etc/nginx/sites-available/default ]]; then
    ln -sfn ../sites-available/default /etc/nginx/sites-enabled/default
    rm -f "$CONF_DIR/.nginx-default-site-disabled"
  fi
  ((running)) && systemctl try-reload-or-restart nginx.service || true
  say "removed the nginx site"
fi

# Redis: drop the include (the data in /var/lib/redis stays Redis' own).
if [[ -f /etc/redis/redis.conf ]] && grep -qx 'include /etc/redis/collabry.conf' /etc/redis/redis.conf; then
  sed -i "\|^$MARKER\$|d; \|^include /etc/redis/collabry.conf\$|d" /etc/redis/redis.conf
  rm -f /etc/redis/collabry.conf
  ((running)) && systemctl try-restart redis-server.service || true
  say "removed the Redis settings"
fi

grep -qs "^$MARKER" /usr/local/sbin/collabry-admin && rm -f /usr/local/sbin/collabry-admin
rm -rf /usr/share/doc/collabry
if [[ -d $PREFIX ]]; then rm -rf --one-file-system "${PREFIX:?}"; say "removed $PREFIX"; fi
rm -f "$CONF_DIR/install.conf"

if ((PURGE)); then
  rm -rf --one-file-system "$STATE_DIR" /var/lib/private/collabry "$CONF_DIR" /var/lib/ferretdb /var/lib/private/ferretdb /var/lib/collabry-postgresql
  getent passwd collabry >/dev/null && userdel collabry 2>/dev/null || true
  getent group collabry >/dev/null && groupdel collabry 2>/dev/null || true
  say "purged data, settings, secrets and the collabry user"
else
  say "kept $STATE_DIR, the database (/var/lib/collabry-postgresql, /var/lib/private/ferretdb) and $CONF_DIR (remove them with --purge)"
fi
say "done"
