#!/usr/bin/env bash
# Turns a fresh Debian 12 host into a Berth worker, idempotently (docs/cluster.md, "Adding a worker").
# Run as root from a Berth checkout (git clone, or an unpacked source tarball of the same tree) on
# the worker:
#
#   sudo infra/install-worker.sh --api-url https://cp.example:8080 --join-token bjt_... \
#        --node-name worker-2 --underlay 10.0.0.12 [--ca-file /path/ca.pem] [--node-address ADDR]
#
# Steps: Debian packages (runc, CNI plugins, wireguard-tools, iproute2, iptables, zstd, attr, ...);
# Node.js >= 20 (kept if present, else the official binary tarball, sha256-checked; BERTH_NODE_TARBALL
# = a local copy for hosts without internet); the agent code: this checkout copied to /opt/berth,
# its npm dependencies installed and built there; /etc/berth/agent.env (0600); the CA file copied
# to /etc/berth/ca.pem; the systemd unit infra/berth-agent.service enabled and (re)started.
# Re-running upgrades the code and restarts the agent: its containers keep running (KillMode=process),
# its node credential and Redis password stay in /var/lib/berth. The join token is needed only for
# the first start; a re-run without --join-token keeps the one in agent.env.
#
#   --dry-run     print every step (commands and files) without changing anything
#   --env-only    write agent.env (and the CA file) and stop: no packages, code or unit
#   --run         exec the agent in the foreground with agent.env (what the unit runs)
#   --prefix DIR  root for /etc, /opt, /var/lib and the unit (tests; default /)
#   --redis-url U only when the control plane runs with BERTH_REDIS_NODE_ACL=off (shared Redis
#                 credentials); otherwise the api hands each agent its own Redis user and URL
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '[berth-worker] %s\n' "$*"; }
die() { printf '[berth-worker] error: %s\n' "$*" >&2; exit 1; }

DRY=0 MODE=install PREFIX=""
API_URL="" JOIN_TOKEN="" NODE_NAME="" UNDERLAY="" NODE_ADDRESS="" CA_FILE="" LABELS="" REDIS_URL_OWN=""
NODE_VERSION="${BERTH_NODE_VERSION:-20.19.5}"
while [ $# -gt 0 ]; do
  case "$1" in
    --api-url) API_URL=$2; shift 2 ;;
    --join-token) JOIN_TOKEN=$2; shift 2 ;;
    --node-name) NODE_NAME=$2; shift 2 ;;
    --underlay) UNDERLAY=$2; shift 2 ;;
    --node-address) NODE_ADDRESS=$2; shift 2 ;;
    --ca-file) CA_FILE=$2; shift 2 ;;
    --labels) LABELS=$2; shift 2 ;;
    --redis-url) REDIS_URL_OWN=$2; shift 2 ;;
    --prefix) PREFIX=${2%/}; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --env-only) MODE="env"; shift ;;
    --run) MODE=run; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

ETC="$PREFIX/etc/berth"
ENV_FILE="$ETC/agent.env"
HOME_DIR="$PREFIX/opt/berth"
DATA_DIR="$PREFIX/var/lib/berth"
UNIT_DIR="$PREFIX/etc/systemd/system"

# run CMD...: run it, or print it in a dry run.
run() {
  if [ "$DRY" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
# write_file PATH MODE < content: atomically, or print it in a dry run.
write_file() {
  local path=$1 mode=$2 content
  content=$(cat)
  if [ "$DRY" = 1 ]; then
    printf '+ write %s (mode %s):\n' "$path" "$mode"
    printf '%s\n' "$content" | sed -e 's/^/    /' -e 's/\(BERTH_JOIN_TOKEN=bjt_\).*/\1…/' -e 's#\(REDIS_URL=[a-z]*://\)[^@/]*@#\1…@#'
    return
  fi
  mkdir -p "$(dirname "$path")"
  local tmp="$path.tmp.$$"
  (umask 077 && printf '%s\n' "$content" > "$tmp")
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$path"
}
# env_value KEY: the value of KEY in the existing agent.env (empty if none).
env_value() {
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1
}

# ---------------------------------------------------------------- run (the unit's ExecStart)
if [ "$MODE" = run ]; then
  [ -f "$ENV_FILE" ] || die "$ENV_FILE not found: install first"
  set -a
  # shellcheck source=/dev/null
  . "$ENV_FILE"
  set +a
  cd "${BERTH_AGENT_HOME:-$HOME_DIR}"
  # BERTH_AGENT_EXEC: how to start the agent from this directory (tests run it from the source).
  # shellcheck disable=SC2086
  exec ${BERTH_AGENT_EXEC:-node --enable-source-maps dist/apps/agent/src/main.js}
fi

[ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || [ -n "$PREFIX" ] || die "run as root (the agent runs containers: runc, network namespaces, iptables)"

# ---------------------------------------------------------------- settings (flags, else what agent.env has)
API_URL=${API_URL:-$(env_value BERTH_API_URL)}
JOIN_TOKEN=${JOIN_TOKEN:-$(env_value BERTH_JOIN_TOKEN)}
NODE_NAME=${NODE_NAME:-$(env_value BERTH_NODE_NAME)}
NODE_NAME=${NODE_NAME:-$(hostname -s | tr 'A-Z_' 'a-z-')}
UNDERLAY=${UNDERLAY:-$(env_value BERTH_NODE_UNDERLAY_ADDRESS)}
if [ -z "$UNDERLAY" ]; then
  # The source address of the route to the api: the address the control plane sees this host at.
  api_host=$(printf '%s' "$API_URL" | sed -E 's#^[a-z]+://(\[[^]]*\]|[^/:]+).*#\1#')
  api_ip=$(getent ahostsv4 "$api_host" 2>/dev/null | awk 'NR==1 {print $1}' || true)
  [ -n "$api_ip" ] && UNDERLAY=$(ip -4 route get "$api_ip" 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n 1)
fi
NODE_ADDRESS=${NODE_ADDRESS:-$(env_value BERTH_NODE_ADDRESS)}
NODE_ADDRESS=${NODE_ADDRESS:-$UNDERLAY}
LABELS=${LABELS:-$(env_value BERTH_NODE_LABELS)}
# Only for a control plane with BERTH_REDIS_NODE_ACL=off: otherwise the api hands the agent its Redis.
REDIS_URL_OWN=${REDIS_URL_OWN:-$(env_value REDIS_URL)}

[ -n "$API_URL" ] || die "--api-url is required (https://<control plane>:8080)"
case "$API_URL" in http://*|https://*) ;; *) die "--api-url must start with http:// or https://" ;; esac
printf '%s' "$NODE_NAME" | grep -Eq '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' || die "node name '$NODE_NAME' is not a DNS label (--node-name)"
[ -n "$UNDERLAY" ] || die "cannot work out this host's underlay address: pass --underlay <IPv4 address other hosts reach it at>"
printf '%s' "$UNDERLAY" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' || die "--underlay must be an IPv4 address, got '$UNDERLAY'"
if [ -n "$JOIN_TOKEN" ]; then
  case "$JOIN_TOKEN" in bjt_*) ;; *) die "--join-token must be a node join token (bjt_...)" ;; esac
elif [ ! -s "$DATA_DIR/agent-$NODE_NAME/node-credential" ]; then
  die "--join-token is required for the first start (create one: berth nodes tokens create --node $NODE_NAME)"
fi
if [ -n "$CA_FILE" ]; then
  [ -f "$CA_FILE" ] || die "--ca-file $CA_FILE not found"
  grep -q 'BEGIN CERTIFICATE' "$CA_FILE" || die "--ca-file $CA_FILE holds no PEM certificate"
fi

step() { say "$*"; }

# ---------------------------------------------------------------- agent.env
write_env() {
  local ca_line="" redis_line=""
  [ -z "$REDIS_URL_OWN" ] || redis_line="REDIS_URL=$REDIS_URL_OWN"
  if [ -n "$CA_FILE" ]; then
    run install -D -m 0644 "$CA_FILE" "$ETC/ca.pem"
    ca_line="BERTH_CA_FILE=$ETC/ca.pem"
  elif [ -n "$(env_value BERTH_CA_FILE)" ]; then
    ca_line="BERTH_CA_FILE=$(env_value BERTH_CA_FILE)"
  fi
  step "writing $ENV_FILE"
  write_file "$ENV_FILE" 0600 <<EOF
# Berth agent ($NODE_NAME), written by infra/install-worker.sh; see docs/agent.md for every variable.
NODE_ENV=production
BERTH_API_URL=$API_URL
BERTH_JOIN_TOKEN=$JOIN_TOKEN
BERTH_NODE_NAME=$NODE_NAME
BERTH_NODE_ADDRESS=$NODE_ADDRESS
BERTH_NODE_UNDERLAY_ADDRESS=$UNDERLAY
BERTH_NODE_LABELS=$LABELS
BERTH_DATA_DIR=$DATA_DIR
BERTH_RUNTIME=runc
# Ops endpoints (/healthz /metrics) on this host only.
BERTH_AGENT_OPS_HOST=127.0.0.1
${ca_line}
${redis_line}
EOF
  run install -d -m 0700 "$DATA_DIR"
}

if [ "$MODE" = env ]; then
  write_env
  exit 0
fi

# ---------------------------------------------------------------- packages
step "Debian packages"
pkgs=(runc containernetworking-plugins wireguard-tools iproute2 iptables zstd attr ca-certificates curl xz-utils rsync)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  say "  all present"
fi

# ---------------------------------------------------------------- Node.js >= 20
step "Node.js >= 20"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -ge 20 ]; then
  say "  node $(node -v) present"
else
  arch=$(dpkg --print-architecture); case "$arch" in amd64) arch=x64 ;; arm64) arch=arm64 ;; *) die "no Node.js binary for $arch" ;; esac
  name="node-v$NODE_VERSION-linux-$arch"
  tarball=${BERTH_NODE_TARBALL:-/tmp/$name.tar.xz}
  if [ -z "${BERTH_NODE_TARBALL:-}" ]; then
    run curl -fsSL -o "$tarball" "https://nodejs.org/dist/v$NODE_VERSION/$name.tar.xz"
    run curl -fsSL -o "/tmp/$name.SHASUMS256.txt" "https://nodejs.org/dist/v$NODE_VERSION/SHASUMS256.txt"
    if [ "$DRY" = 1 ]; then
      printf '+ check sha256 of %s against SHASUMS256.txt\n' "$tarball"
    else
      (cd /tmp && grep " $name.tar.xz\$" "$name.SHASUMS256.txt" | sed "s# # /tmp/#" | sha256sum -c --status) || die "sha256 of $tarball does not match nodejs.org's SHASUMS256.txt"
    fi
  fi
  run tar -xJf "$tarball" -C /usr/local --strip-components=1 --no-same-owner
fi

# ---------------------------------------------------------------- agent code
step "agent code: $SRC → $HOME_DIR"
if [ ! -f "$SRC/package.json" ] || [ ! -f "$SRC/apps/agent/src/main.ts" ]; then die "$SRC is not a Berth checkout"; fi
run install -d -m 0755 "$HOME_DIR"
run rsync -a --delete --exclude .git --exclude .data --exclude node_modules --exclude dist "$SRC/" "$HOME_DIR/"
# Dependencies as the lock file pins them (no install scripts: see infra/node-deps.sh), then the build.
run bash -c "cd '$HOME_DIR' && npm install --ignore-scripts --no-audit --no-fund --loglevel=error && npm run -s build"

write_env

# ---------------------------------------------------------------- systemd unit
step "systemd unit berth-agent.service"
run install -D -m 0644 "$SRC/infra/berth-agent.service" "$UNIT_DIR/berth-agent.service"
if [ -z "$PREFIX" ]; then
  run systemctl daemon-reload
  run systemctl enable berth-agent.service
  # restart: a re-run picks up new code and settings; the containers keep running (KillMode=process).
  run systemctl restart berth-agent.service
  say "done: journalctl -u berth-agent -f; the node appears in 'berth nodes list' as $NODE_NAME"
else
  say "done (prefix $PREFIX: systemd not touched)"
fi
