#!/usr/bin/env bash
# Build (once) and print the path of a cached Debian bookworm root filesystem that the
# system tests boot with systemd-nspawn. The cache key is a hash of the suite, the variant,
# the package list and this script's setup steps, so changing any of them builds a new tree.
#
#   scripts/build-rootfs.sh            # build if missing, print the path
#   scripts/build-rootfs.sh --print    # print the path only (exit 1 if not built)
#   scripts/build-rootfs.sh --prune    # remove cached trees other than the current one
#
# Environment: XDG_CACHE_HOME, COLLABRY_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
PACKAGES=(
  systemd-sysv systemd dbus python3 python3-venv curl redis-server nginx-light
  procps iproute2 ca-certificates restic
  postgresql-15 postgresql-15-rum postgresql-15-postgis-3
)
MIRROR=${COLLABRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${COLLABRY_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Bump when the post-install setup below changes.
SETUP_VERSION=2

CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/collabry
key=$({ printf '%s\n' "$SUITE" "$VARIANT" "setup=$SETUP_VERSION"; printf '%s\n' "${PACKAGES[@]}" | LC_ALL=C sort; } \
  | sha256sum | cut -c1-16)
ROOTFS=$CACHE_ROOT/rootfs-$key

mode=build
case "${1:-}" in
  --print) mode=print ;;
  --prune) mode=prune ;;
  "") ;;
  *) echo "usage: $0 [--print|--prune]" >&2; exit 2 ;;
esac

if [[ $mode == print ]]; then
  [[ -f $ROOTFS/.collabry-rootfs ]] || exit 1
  echo "$ROOTFS"; exit 0
fi
if [[ $mode == prune ]]; then
  for d in "$CACHE_ROOT"/rootfs-*; do
    [[ -e $d && $d != "$ROOTFS" ]] || continue
    echo "removing $d" >&2; rm -rf --one-file-system "$d"
  done
  exit 0
fi

if [[ -f $ROOTFS/.collabry-rootfs ]]; then echo "$ROOTFS"; exit 0; fi
[[ $(id -u) == 0 ]] || { echo "build-rootfs: must run as root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-rootfs: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.rootfs.lock"
flock 9
# Another process may have built it while we waited for the lock.
if [[ -f $ROOTFS/.collabry-rootfs ]]; then echo "$ROOTFS"; exit 0; fi

tmp=$ROOTFS.tmp.$$
trap 'rm -rf --one-file-system "$tmp"' EXIT
rm -rf --one-file-system "$ROOTFS".tmp.* "$ROOTFS"
start=$SECONDS
echo "build-rootfs: debootstrap $SUITE ($VARIANT) into $tmp" >&2
include=$(IFS=,; echo "${PACKAGES[*]}")
debootstrap --variant="$VARIANT" --include="$include" "$SUITE" "$tmp" "$MIRROR" >&2
# The point release and security updates, as on a maintained host: extensions built on the host
# against PostgreSQL's newest minor release need its symbols.
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
  "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" >"$tmp/etc/apt/sources.list"
chroot "$tmp" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get -y -qq upgrade >&2

# Container setup: no fstab entries, a fixed hostname and machine id left empty (systemd
# creates a transient one at boot), no services that make no sense in a test container.
: >"$tmp/etc/fstab"
echo collabry-test >"$tmp/etc/hostname"
: >"$tmp/etc/machine-id"
for unit in getty@tty1.service console-getty.service systemd-timesyncd.service \
            apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
# Keep the image small: no package lists or caches.
chroot "$tmp" apt-get clean >/dev/null 2>&1 || true
rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/*.bin "$tmp"/var/log/*.log
printf 'suite=%s\nvariant=%s\npackages=%s\nsetup=%s\n' "$SUITE" "$VARIANT" "${PACKAGES[*]}" "$SETUP_VERSION" \
  >"$tmp/.collabry-rootfs"

mv "$tmp" "$ROOTFS"
trap - EXIT
echo "build-rootfs: done in $((SECONDS - start)) s: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))" >&2
echo "$ROOTFS"
