#!/usr/bin/env bash
# The whole test suite, as CI runs it: infrastructure, dependencies, typecheck, lint, fixture
# images, then jest (unit, integration against real Postgres/Redis/registry/runc, e2e, vm: cgroup v2
# under qemu).
# Extra arguments go to jest (e.g. `npm test -- --selectProjects unit`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
t0=$(date +%s)
BERTH_WITH_BROWSER=1 BERTH_WITH_VM=1 bash infra/deps.sh
bash infra/node-deps.sh
# Separate commands, not `a && b`: under `set -e` a failure on the left of && does not stop the script.
say "typecheck"
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p apps/dashboard/tsconfig.json
say "lint"; npx eslint --max-warnings=0 .
say "dashboard build"; npm run -s dashboard:build >/dev/null
say "fixture images"; bash test/fixtures/images/build.sh
say "jest"
set +e
npx jest --ci --maxWorkers=2 "$@"
rc=$?
set -e
say "test suite finished in $(( $(date +%s) - t0 )) s (exit $rc)"
exit $rc
