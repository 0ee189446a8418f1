#!/usr/bin/env bash
# Stops what `npm run up` / infra/deps.sh started (by the PIDs they recorded); servers that were
# already running before Berth are left alone.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# The agent first, asking it to stop its containers too (they outlive a plain agent restart).
[ -f "$BERTH_DATA_DIR/run/agent.pid" ] && touch "$BERTH_DATA_DIR/run/agent.stop-containers"
for f in "$BERTH_DATA_DIR"/run/agent.pid "$BERTH_DATA_DIR"/run/*.pid; do
  [ -f "$f" ] || continue
  name=$(basename "$f" .pid); pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $name (pid $pid)"; kill -TERM "$pid" 2>/dev/null || true
    # The agent stops its containers (SIGTERM, grace period, SIGKILL): give it longer.
    waits=50; [ "$name" = agent ] && waits=200
    for _ in $(seq 1 $waits); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
done
if [ -f "$BERTH_DATA_DIR/postgres/postmaster.pid" ]; then
  say "stopping private postgres"
  runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$BERTH_DATA_DIR/postgres" -m fast stop >/dev/null || true
fi
say "stopped"
