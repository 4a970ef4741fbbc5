#!/usr/bin/env bash
# Runs a command as on a machine where PostgreSQL and Redis are installed but neither configured nor
# running: in private network, PID and mount namespaces (as root, util-linux's unshare), with empty
# PostgreSQL cluster, socket, Redis and log directories. The machine's own servers are untouched and
# unreachable from inside. Used by test/chaos/fresh-machine.chaos.ts with the README's first command:
#   sudo bash scripts/fresh-services.sh npm run demo
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "fresh-services: needs root (namespaces and mounts)" >&2; exit 2; }
[ $# -gt 0 ] || { echo "usage: scripts/fresh-services.sh <command…>" >&2; exit 2; }
exec unshare --mount --net --pid --fork --mount-proc bash -c '
  set -euo pipefail
  ip link set lo up
  for d in /etc/postgresql /var/lib/postgresql /var/run/postgresql /var/log/postgresql /var/lib/redis /var/log/redis; do
    mkdir -p "$d" && mount -t tmpfs tmpfs "$d"
  done
  chown postgres:postgres /var/lib/postgresql /var/log/postgresql /var/run/postgresql
  ! pg_isready -h 127.0.0.1 -p 5432 -q || { echo "fresh-services: PostgreSQL still answers" >&2; exit 1; }
  ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null || { echo "fresh-services: Redis still answers" >&2; exit 1; }
  exec "$@"
' fresh-services "$@"
