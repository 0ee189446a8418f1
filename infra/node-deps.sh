#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing or older than package-lock.json, and
# generates Prisma Client (the schema engine binary is never downloaded: see libs/db/src/migrate).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
command -v node >/dev/null || die "Node.js 20 is required (Debian: apt-get install nodejs npm, or NodeSource)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "Node.js >= 20 is required, found $(node -v)"
stamp=node_modules/.berth-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  say "npm: installing dependencies from package-lock.json"
  # --ignore-scripts: no dependency needs its install script here (argon2 and @swc/core ship prebuilt
  # binaries), and Prisma's would try to download engines from a host an offline machine cannot reach.
  # `npm install` rather than `npm ci`: npm records only this platform's optional binaries (@swc/core-*)
  # in the lockfile, which `npm ci` then rejects as out of sync (npm/cli#4828); install keeps the pins.
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error >"$BERTH_DATA_DIR/logs/npm-install.log" 2>&1 \
    || { tail -30 "$BERTH_DATA_DIR/logs/npm-install.log" >&2; die "npm ci failed (log: $BERTH_DATA_DIR/logs/npm-install.log)"; }
  PRISMA_SCHEMA_ENGINE_BINARY=/bin/false npx prisma generate >/dev/null
  touch "$stamp"
else
  say "npm: dependencies up to date"
fi
[ -f libs/db/src/generated/prisma/client.ts ] && [ libs/db/src/generated/prisma/client.ts -nt prisma/schema.prisma ] \
  || { say "prisma: generating client"; PRISMA_SCHEMA_ENGINE_BINARY=/bin/false npx prisma generate >/dev/null; }

# argon2 (password hashes) ships prebuilt binaries, but on Debian's Node build the prebuilt one can
# crash on load (seen: SIGSEGV). Check in a child process and compile it against this Node's headers
# when it does not load; node-gyp comes with npm, the headers with Node (nodedir, /usr by default).
argon2_loads() { bash -c "node -e \"require('argon2')\"" >/dev/null 2>&1; }
if ! argon2_loads; then
  nodedir=$(npm config get nodedir 2>/dev/null || true)
  [ -n "$nodedir" ] && [ -d "$nodedir/include/node" ] || nodedir=/usr
  gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
  say "argon2: the prebuilt binary does not load with this Node; compiling it (headers from $nodedir)"
  if [ -f "$gyp" ]; then build=(node "$gyp" rebuild "--nodedir=$nodedir"); else build=(npm exec --yes -- node-gyp rebuild "--nodedir=$nodedir"); fi
  (cd node_modules/argon2 && "${build[@]}") >"$BERTH_DATA_DIR/logs/argon2-build.log" 2>&1 \
    || { tail -20 "$BERTH_DATA_DIR/logs/argon2-build.log" >&2; die "compiling argon2 failed (needs g++, make, python3; log: $BERTH_DATA_DIR/logs/argon2-build.log)"; }
  argon2_loads || die "argon2 still does not load after compiling it"
fi
