#!/usr/bin/env bash
# The demo: from a fresh machine to the whole story on the shipped fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build --silent
exec npx tsx scripts/demo.ts "$@"
