#!/usr/bin/env bash
# Starts Berth on this machine with working defaults: infrastructure (infra/deps.sh), npm
# dependencies, database migrations, a build, the first admin and token (printed once), then the
# api, scheduler, gateway and a local agent as background processes. Idempotent: running it again
# restarts the apps on the new build and keeps the data. `npm run down` stops everything it started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
t0=$(date +%s)

bash infra/deps.sh
bash infra/node-deps.sh

export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/berth}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export BERTH_DATA_DIR
export NODE_ENV="${NODE_ENV:-production}"
API_PORT="${BERTH_API_PORT:-8080}"
GATEWAY_PORT="${BERTH_GATEWAY_PORT:-8000}"
export BERTH_API_URL="${BERTH_API_URL:-http://127.0.0.1:$API_PORT}"
# The key that encrypts registry credentials (and signs login JWTs): made once, kept with the data.
if [ -z "${BERTH_SECRET_KEY:-}" ]; then
  key_file="$BERTH_DATA_DIR/secret.key"
  [ -s "$key_file" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$key_file")
  export BERTH_SECRET_KEY="$(cat "$key_file")"
fi

say "database: migrating $DATABASE_URL"
node -r @swc-node/register libs/db/src/migrate/cli.ts deploy

say "build"
rm -rf dist && npm run -s build
if [ -f apps/dashboard/package.json ] || [ -f apps/dashboard/vite.config.ts ]; then
  npm run -s dashboard:build >/dev/null 2>&1 || say "warning: dashboard build failed; the API still serves /docs"
fi

# Sample images for the README's first commands (berth-fixtures/web:v1, v2, …) in the local
# registry; already pushed ones are kept. A machine without them can still deploy its own images.
say "sample images: 127.0.0.1:5000/berth-fixtures/* (log $BERTH_DATA_DIR/logs/sample-images.log)"
bash test/fixtures/images/build.sh 127.0.0.1:5000 >"$BERTH_DATA_DIR/logs/sample-images.log" 2>&1 \
  || say "warning: the sample images could not be pushed (see the log); deploy an image of your own instead"

# `berth` as a command: a small launcher for the built CLI (about 0.4 s a command, against 1.3 s for
# `npm run -s berth --`). Written only where no other `berth` is, or over one of ours.
cli_link="${BERTH_CLI_LINK:-/usr/local/bin/berth}"
cli_marker="# berth CLI launcher (infra/up.sh)"
if { [ ! -e "$cli_link" ] || grep -qF "$cli_marker" "$cli_link" 2>/dev/null; } && [ -w "$(dirname "$cli_link")" ]; then
  printf '#!/bin/sh\n%s\nexec node "%s/dist/apps/cli/src/main.js" "$@"\n' "$cli_marker" "$BERTH_ROOT" > "$cli_link"
  chmod 755 "$cli_link"
  cli="berth"
else
  cli="node $BERTH_ROOT/dist/apps/cli/src/main.js"
  say "cli: $cli_link is not ours or not writable; use: alias berth='$cli'"
fi

# Stop apps from a previous `up` (ours only, by PID).
for app in api scheduler gateway agent; do
  f="$BERTH_DATA_DIR/run/$app.pid"
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    kill -TERM "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$f"
done

# First run only: the operator project `default`, an admin user and an admin API token. They are
# printed once and also kept in $BERTH_DATA_DIR/initial-admin.txt (mode 0600) in case the output is lost.
admin_email="${BERTH_BOOTSTRAP_ADMIN_EMAIL:-admin@berth.local}"
admin_password="${BERTH_BOOTSTRAP_ADMIN_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}"
boot=$(node -r @swc-node/register scripts/bootstrap.ts --email "$admin_email" --password "$admin_password")
if grep -q 'shown once' <<<"$boot"; then
  token=$(grep -o 'brt_[A-Za-z0-9_-]*' <<<"$boot" | head -1)
  (umask 077; printf 'email: %s\npassword: %s\napi token: %s\n' "$admin_email" "$admin_password" "$token" > "$BERTH_DATA_DIR/initial-admin.txt")
  first_run_note="
First run: created the operator project 'default' and its admin (shown once; also in $BERTH_DATA_DIR/initial-admin.txt):
  email     $admin_email
  password  $admin_password
  API token $token
  try:      $cli login --api $BERTH_API_URL --token $token
            $cli deploy web --image 127.0.0.1:5000/berth-fixtures/web:v1 --port 8080"
else
  say "bootstrap: an admin already exists (first-run credentials: $BERTH_DATA_DIR/initial-admin.txt)"
  first_run_note=""
fi

# The local agent joins once with a join token bound to its node name (1 h), exchanges it for its
# own node credential ($BERTH_DATA_DIR/agent-<node>/node-credential, 0600) and uses that from then
# on: a token is issued only while the node has no credential.
export BERTH_NODE_NAME="${BERTH_NODE_NAME:-$(hostname -s | tr 'A-Z_' 'a-z-' | cut -c1-63)}"
rm -f "$BERTH_DATA_DIR/agent/join-token" # an unbound token kept by earlier versions
unset BERTH_JOIN_TOKEN
if [ ! -s "$BERTH_DATA_DIR/agent-$BERTH_NODE_NAME/node-credential" ]; then
  BERTH_JOIN_TOKEN="$(node -r @swc-node/register scripts/issue-join-token.ts --node "$BERTH_NODE_NAME" --ttl 3600 "local agent (npm run up)")"
  export BERTH_JOIN_TOKEN
fi

start_app() { # start_app NAME HEALTH_URL
  local name=$1 url=$2
  start_daemon "$name" "$BERTH_DATA_DIR/logs/$name.log" node --enable-source-maps "dist/apps/$name/src/main.js"
  wait_for "$name ($url)" 60 curl -fsS -m 2 "$url"
  say "$name: up (pid $(cat "$BERTH_DATA_DIR/run/$name.pid"), log $BERTH_DATA_DIR/logs/$name.log)"
}
start_app api "http://127.0.0.1:$API_PORT/healthz"
start_app scheduler "http://127.0.0.1:${BERTH_SCHEDULER_OPS_PORT:-9101}/healthz"
start_app gateway "http://127.0.0.1:${BERTH_GATEWAY_OPS_PORT:-9100}/healthz"
BERTH_RUNTIME="${BERTH_RUNTIME:-runc}" start_app agent "http://127.0.0.1:${BERTH_AGENT_OPS_PORT:-9102}/healthz"

# What fits: each replica reserves CPU and memory on its node (defaults 250m / 256Mi).
node_cpu_m=$(( ${BERTH_NODE_CPU_MILLIS:-$(( $(nproc) * 1000 ))} ))
node_mem_mi=$(( ${BERTH_NODE_MEMORY_MIB:-$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))} ))
fit=$(( node_cpu_m / 250 )); [ $(( node_mem_mi / 256 )) -lt "$fit" ] && fit=$(( node_mem_mi / 256 ))

cat <<TXT

Berth is running ($(( $(date +%s) - t0 )) s):
  API + dashboard   $BERTH_API_URL          (OpenAPI: $BERTH_API_URL/docs)
  gateway           http://127.0.0.1:$GATEWAY_PORT  (services at http://<service>.<project>.localhost:$GATEWAY_PORT)
  metrics/health    api $BERTH_API_URL/metrics, scheduler :9101, gateway :9100, agent :9102 (/healthz /readyz /metrics)
  logs              $BERTH_DATA_DIR/logs/
  cli               $cli  (docs/cli.md)
  capacity          node $BERTH_NODE_NAME offers ${node_cpu_m}m CPU and ${node_mem_mi}Mi memory; a replica reserves 250m and 256Mi
                    unless deployed with --cpu / --memory: about $fit replicas fit (\`berth nodes\` shows what is reserved)
  stop              npm run down
TXT
[ -n "$first_run_note" ] && printf '%s\n' "$first_run_note"
true
