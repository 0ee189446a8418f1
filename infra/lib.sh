# Shared helpers for Berth's infra scripts. Source it; it sets BERTH_ROOT and BERTH_DATA_DIR.
set -euo pipefail
BERTH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BERTH_DATA_DIR="${BERTH_DATA_DIR:-$BERTH_ROOT/.data}"
case "$BERTH_DATA_DIR" in /*) ;; *) BERTH_DATA_DIR="$BERTH_ROOT/$BERTH_DATA_DIR" ;; esac
mkdir -p "$BERTH_DATA_DIR/logs" "$BERTH_DATA_DIR/run"

say() { printf '[berth] %s\n' "$*"; }
die() { printf '[berth] error: %s\n' "$*" >&2; exit 1; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- 3<&- ; }

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds or time runs out.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$what did not come up within ${secs}s"
    sleep 0.2
  done
}

# start_daemon NAME LOGFILE COMMAND...: start COMMAND detached (own session), record its PID in run/NAME.pid.
start_daemon() {
  local name=$1 log=$2; shift 2
  setsid "$@" >>"$log" 2>&1 < /dev/null &
  echo $! > "$BERTH_DATA_DIR/run/$name.pid"
}

# pid_alive NAME: the daemon we started under NAME is still running.
pid_alive() {
  local f="$BERTH_DATA_DIR/run/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}
