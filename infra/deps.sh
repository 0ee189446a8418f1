#!/usr/bin/env bash
# Makes sure everything Berth needs on this machine is installed and running, idempotently:
#   Debian packages: postgresql (15), redis-server (7), docker-registry (CNCF distribution), runc,
#     containernetworking-plugins, skopeo, umoci, busybox-static, iproute2, iptables, nftables (tenant
#     isolation), socat (isolation tests), wireguard-tools + wireguard-go (pod network, wireguard
#     mode), attr, zstd, openssl, shellcheck
#     (+ chromium with BERTH_WITH_BROWSER=1; qemu-system-x86, linux-image-amd64 with BERTH_WITH_VM=1)
#   servers: Postgres on 127.0.0.1:5432, Redis on 127.0.0.1:6379, a registry on 127.0.0.1:5000
# A server already listening and answering is reused; otherwise a private one is started with its
# data under $BERTH_DATA_DIR (default .data/). Prints what it did. Run as root.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${BERTH_PG_PORT:-5432}"
REDIS_PORT="${BERTH_REDIS_PORT:-6379}"
REGISTRY_ADDR="${BERTH_REGISTRY_ADDR:-127.0.0.1:5000}"

[ "$(id -u)" = 0 ] || die "run as root: Berth installs packages and runs containers (runc, network namespaces, overlay mounts)"

# ---------------------------------------------------------------- packages
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd runc || need+=(runc)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
have_cmd skopeo || need+=(skopeo)
have_cmd umoci || need+=(umoci)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
have_cmd docker-registry || need+=(docker-registry)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
have_cmd redis-server || need+=(redis-server)
have_cmd ip || need+=(iproute2)
have_cmd iptables || need+=(iptables)
# The pod network's wireguard mode (docs/cluster.md): wg, and wireguard-go where the kernel has no module.
have_cmd wg || need+=(wireguard-tools)
have_cmd wireguard-go || need+=(wireguard-go)
# The agent's tenant isolation rules (nftables table berth_iso_<bridge>); socat drives its tests.
have_cmd nft || need+=(nftables)
have_cmd socat || need+=(socat)
have_cmd setfattr || need+=(attr)
have_cmd zstd || need+=(zstd)
have_cmd curl || need+=(curl)
have_cmd htpasswd || need+=(apache2-utils)
have_cmd psql || need+=(postgresql-client-15)
# Tests: TLS certificates for the agent-link tests, and the lint of infra/install-worker.sh.
have_cmd openssl || need+=(openssl)
have_cmd shellcheck || need+=(shellcheck)
# A C++ toolchain for native npm modules that must be compiled here (argon2, see node-deps.sh).
have_cmd g++ || need+=(g++)
have_cmd make || need+=(make)
have_cmd python3 || need+=(python3)
# Load generator of the benches (bench/gateway, the lab's cross-host case).
have_cmd wrk || need+=(wrk)
# The test suite drives the dashboard in Debian's Chromium (infra/test.sh asks for it; `up` does not).
if [ "${BERTH_WITH_BROWSER:-0}" = 1 ] && [ -z "${BERTH_CHROMIUM:-}" ]; then have_cmd chromium || need+=(chromium); fi
# The cgroup v2 VM test (test/vm) boots Debian's kernel under qemu; infra/test.sh asks for them.
if [ "${BERTH_WITH_VM:-0}" = 1 ]; then
  have_cmd qemu-system-x86_64 || need+=(qemu-system-x86)
  compgen -G '/boot/vmlinuz-*' >/dev/null || need+=(linux-image-amd64)
fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Installing postgresql/redis must not fight over ports with servers we reuse: don't auto-start them.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq >/dev/null || say "apt-get update failed; trying with the package lists we have"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >"$BERTH_DATA_DIR/logs/apt.log" 2>&1 \
    || { tail -20 "$BERTH_DATA_DIR/logs/apt.log" >&2; die "apt-get install failed (log: $BERTH_DATA_DIR/logs/apt.log)"; }
  rm -f /usr/sbin/policy-rc.d; trap - EXIT
else
  say "packages: all present"
fi

# ---------------------------------------------------------------- Postgres
pg_ok() { PGCONNECT_TIMEOUT=2 psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; }
if pg_ok; then
  say "postgres: reusing the server on 127.0.0.1:$PG_PORT"
elif port_open 127.0.0.1 "$PG_PORT"; then
  die "something listens on 127.0.0.1:$PG_PORT but does not accept 'psql -U postgres' without a password; free the port or set BERTH_PG_PORT"
else
  # A stopped Debian cluster: start it. Otherwise a private cluster under the data dir.
  cluster=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3==p {print $1" "$2; exit}' || true)
  if [ -n "$cluster" ]; then
    say "postgres: starting Debian cluster $cluster"
    pg_ctlcluster --skip-systemctl-redirect $cluster start || true
  fi
  if ! pg_ok; then
    pgdata="$BERTH_DATA_DIR/postgres"
    bin=/usr/lib/postgresql/15/bin
    if [ ! -f "$pgdata/PG_VERSION" ]; then
      say "postgres: creating a private cluster in $pgdata"
      mkdir -p "$pgdata" && chown postgres:postgres "$pgdata" && chmod 700 "$pgdata"
      runuser -u postgres -- "$bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    mkdir -p "$BERTH_DATA_DIR/run/pg" && chown postgres:postgres "$BERTH_DATA_DIR/run/pg"
    touch "$BERTH_DATA_DIR/logs/postgres.log" && chown postgres:postgres "$BERTH_DATA_DIR/logs/postgres.log"
    say "postgres: starting private server on 127.0.0.1:$PG_PORT"
    runuser -u postgres -- "$bin/pg_ctl" -D "$pgdata" -l "$BERTH_DATA_DIR/logs/postgres.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $BERTH_DATA_DIR/run/pg -c max_connections=300 -c fsync=off" start >/dev/null
  fi
  wait_for "postgres" 30 pg_ok
fi

# ---------------------------------------------------------------- Redis
redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
if redis_ok; then
  say "redis: reusing the server on 127.0.0.1:$REDIS_PORT"
elif port_open 127.0.0.1 "$REDIS_PORT"; then
  die "something listens on 127.0.0.1:$REDIS_PORT but does not answer PING; free the port or set BERTH_REDIS_PORT"
else
  mkdir -p "$BERTH_DATA_DIR/redis"
  say "redis: starting private server on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$BERTH_DATA_DIR/redis" \
    --save "" --appendonly no --logfile "$BERTH_DATA_DIR/logs/redis.log" --pidfile "$BERTH_DATA_DIR/run/redis.pid" >/dev/null
  wait_for "redis" 15 redis_ok
fi

# ---------------------------------------------------------------- OCI registry
registry_ok() { curl -fsS -m 2 "http://$REGISTRY_ADDR/v2/" >/dev/null; }
if registry_ok; then
  say "registry: reusing the registry on $REGISTRY_ADDR"
elif port_open "${REGISTRY_ADDR%:*}" "${REGISTRY_ADDR##*:}"; then
  die "something listens on $REGISTRY_ADDR but is not an OCI registry; free the port or set BERTH_REGISTRY_ADDR"
else
  mkdir -p "$BERTH_DATA_DIR/registry"
  cat > "$BERTH_DATA_DIR/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $BERTH_DATA_DIR/registry }
  delete: { enabled: true }
http:
  addr: $REGISTRY_ADDR
YML
  say "registry: starting docker-registry on $REGISTRY_ADDR (data in $BERTH_DATA_DIR/registry)"
  start_daemon registry "$BERTH_DATA_DIR/logs/registry.log" docker-registry serve "$BERTH_DATA_DIR/registry.yml"
  wait_for "registry" 15 registry_ok
fi

# ---------------------------------------------------------------- kernel bits for containers
modprobe overlay 2>/dev/null || true
modprobe br_netfilter 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1 2>/dev/null || true
grep -q overlay /proc/filesystems || say "warning: overlayfs is not available in this kernel; containers cannot start"
say "infrastructure ready: postgres 127.0.0.1:$PG_PORT, redis 127.0.0.1:$REDIS_PORT, registry $REGISTRY_ADDR"
