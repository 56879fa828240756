#!/bin/sh
# Writes the secret files deploy/compose.yaml reads (random values, mode 0600), once:
#   deploy/compose-secrets.sh [DIR]     (default deploy/secrets)
set -eu
dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
umask 077
rand() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
for name in jwt-secret service-token webhook-secret postgres-password; do
  [ -s "$dir/$name" ] || rand >"$dir/$name"
done
pw=$(cat "$dir/postgres-password")
[ -s "$dir/database-uri" ] || printf 'mongodb://collabry:%s@ferretdb:27017/' "$pw" >"$dir/database-uri"
[ -s "$dir/postgresql-url" ] || printf 'postgres://collabry:%s@postgres:5432/postgres' "$pw" >"$dir/postgresql-url"
echo "secrets in $dir"
