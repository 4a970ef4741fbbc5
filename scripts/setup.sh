#!/usr/bin/env bash
# Brings a fresh machine of this kind to a state where erp runs: npm packages, the services the
# project needs (PostgreSQL and Redis are started when missing), and OpenSSH's sshd for SFTP.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# PostgreSQL and Redis normally run already. When they do not answer: install them from the
# distribution's packages if missing, create a cluster if there is none (trust on loopback, as on
# this kind of machine), start them, and give this user a superuser role and its databases.
as_root_or_say() { # <what> <command…>: run a command that needs root, or say what to install
  local what=$1; shift
  if [ "$(id -u)" = 0 ]; then "$@"; else echo "setup: $what is missing; install it (as root: $*)" >&2; return 1; fi
}
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
}
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "setup: installing PostgreSQL (Debian's postgresql package)" >&2
    as_root_or_say PostgreSQL apt_install postgresql
  fi
  if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    echo "setup: creating PostgreSQL cluster $version/main (trust on loopback)" >&2
    as_root_or_say "a PostgreSQL cluster" pg_createcluster "$version" main -- --auth-local=trust --auth-host=trust >/dev/null
  fi
  mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql 2>/dev/null || true
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  for _ in $(seq 1 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
fi
me=$(id -un)
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && ! psql -h 127.0.0.1 -U "$me" -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: creating PostgreSQL role $me and databases $me, test" >&2
    su postgres -c "psql -qc 'CREATE ROLE \"$me\" SUPERUSER LOGIN'" >/dev/null
  fi
fi
for db in "$me" test; do
  psql -h 127.0.0.1 -U "$me" -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'" 2>/dev/null | grep -q 1 ||
    createdb -h 127.0.0.1 -U "$me" "$db" 2>/dev/null || true
done
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if ! command -v redis-server >/dev/null; then
    echo "setup: installing Redis (Debian's redis-server package)" >&2
    as_root_or_say Redis apt_install redis-server
  fi
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 40); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.25; done
  fi
fi

# OpenSSH's sshd (and the sftp client the benchmark compares against) for the SFTP tests and demo.
if [ ! -x /usr/sbin/sshd ] || ! command -v sftp >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q openssh-server openssh-client >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q openssh-server openssh-client >/dev/null; }
  else
    echo "setup: OpenSSH server missing; install openssh-server (the SFTP tests need it)" >&2
  fi
fi
mkdir -p /run/sshd 2>/dev/null || true

# Debian's chromium for the console's browser tests (driven by playwright-core; no browser download).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } ||
      echo "setup: chromium could not be installed; the console's browser tests will be skipped" >&2
  else
    echo "setup: chromium missing; install it (apt-get install chromium) for the console's browser tests" >&2
  fi
fi

# LibreOffice Calc writes workbooks during the XLSX tests (a CSV, and dates in the 1900 and 1904 date
# systems), so the reader is tested on files another program made in the same run.
if ! command -v soffice >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends libreoffice-calc-nogui >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends libreoffice-calc-nogui >/dev/null; } ||
      echo "setup: LibreOffice could not be installed; the soffice tests of test/format-xlsx.test.ts will be skipped" >&2
  else
    echo "setup: LibreOffice missing; install it (apt-get install --no-install-recommends libreoffice-calc-nogui) for the XLSX tests" >&2
  fi
fi
