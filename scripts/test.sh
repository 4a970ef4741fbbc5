#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need on a fresh machine, builds, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# LibreOffice converts a CSV to XLSX in one test (a workbook written by another program than exceljs);
# best effort: without it that one test says it is skipped, and the committed LibreOffice fixture is still read.
if ! command -v soffice >/dev/null && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libreoffice-calc-nogui >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libreoffice-calc-nogui >/dev/null 2>&1; } ||
    echo "test: LibreOffice could not be installed; the soffice conversion test will be skipped" >&2
fi
npm run build
npm run lint
mkdir -p var
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=var/test-results.json "$@" || status=$?
# The chaos suite kills and restarts servers of its own (PostgreSQL cluster, Redis); without them it
# says so and skips. Not run when the command names test files of its own.
if [ $# -eq 0 ]; then
  npx vitest run --config vitest.chaos.config.ts || status=$?
fi
# One plain closing line for any reader of the log: "N passed, N failed".
node -e "const r=require('./var/test-results.json');console.log(r.numPassedTests+' passed, '+r.numFailedTests+' failed'+(r.numPendingTests?', '+r.numPendingTests+' skipped':''))" || true
exit $status
