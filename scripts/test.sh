#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need on a fresh machine, builds, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
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
