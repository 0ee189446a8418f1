#!/bin/sh
# Compiles the bench with the repo's .swcrc (resolves @berth/* aliases) and runs it with plain node.
# Usage: bench/start/run.sh [starts=50] [cniCycles=1000]   (as root: it runs containers)
set -e
cd "$(dirname "$0")/../.."
OUT=$(mktemp -d /tmp/berth-bench-build-XXXXXX)
npx swc bench/start libs/runtime/src libs/contracts/src test/integration/runtime/fixture.ts -d "$OUT" --config-file .swcrc >/dev/null
node "$OUT/bench/start/start.bench.js" "$@"
rm -rf "$OUT"
