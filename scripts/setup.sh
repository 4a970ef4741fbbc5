#!/usr/bin/env bash
# Brings a fresh machine of this kind to a state where erp runs: npm packages, the services the
# project needs (PostgreSQL and Redis are started when missing), and OpenSSH's sshd for SFTP.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# PostgreSQL and Redis normally run already; start them if they do not answer.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
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
