#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need on a fresh machine, builds, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build
npm run lint
npx vitest run "$@"
