#!/usr/bin/env bash
# Pull benchmark: Berth's streaming pull+unpack vs skopeo copy + umoci unpack, same image, same run.
# Builds a one-layer image holding SIZE_MB of random (incompressible) bytes with umoci, pushes it
# to the local registry with skopeo, then alternates the pullers REPS times on fresh dirs:
#   - Berth in a running process (how the agent pulls: one long-lived process, node start-up and
#     module loading paid once; timed inside the process around ImagePuller.pull),
#   - Berth as a fresh `node pull.js` process (compiled JS; timed by this script, start-up included),
#   - skopeo copy + umoci unpack (two fresh Go processes; timed by this script).
# Prints a markdown table. Usage: bench/pull/run.sh [SIZE_MB=200] [REPS=3]
set -euo pipefail
SIZE_MB=${1:-200}
REPS=${2:-3}
REGISTRY=${REGISTRY:-127.0.0.1:5000}
REPO="berth-bench/pull-${SIZE_MB}m"
TAG=v1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

ms() { date +%s%3N; }

# 1. Compile the Berth entry point and the agent's modules (path aliases resolved by .swcrc).
(cd "$ROOT" && npx --no-install swc bench/pull/pull.ts apps/agent/src libs/contracts/src libs/config/src libs/observability/src libs/oci/src libs/runtime/src \
  -d "$WORK/build" --config-file .swcrc --ignore '**/*.spec.ts' >/dev/null 2>&1)
export NODE_PATH="$ROOT/node_modules"

# 2. Build and push the image (skipped when the tag already exists).
if ! curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/$REPO/manifests/$TAG"; then
  umoci init --layout "$WORK/src" >/dev/null
  umoci new --image "$WORK/src:$TAG" >/dev/null
  umoci unpack --rootless --image "$WORK/src:$TAG" "$WORK/srcbundle" >/dev/null 2>&1 || umoci unpack --image "$WORK/src:$TAG" "$WORK/srcbundle" >/dev/null
  head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom > "$WORK/srcbundle/rootfs/random.bin"
  umoci repack --image "$WORK/src:$TAG" "$WORK/srcbundle" >/dev/null
  skopeo copy --quiet "oci:$WORK/src:$TAG" "docker://$REGISTRY/$REPO:$TAG" --dest-tls-verify=false
  rm -rf "$WORK/src" "$WORK/srcbundle"
fi

# 3. The long-lived puller (warmed up with a small fixture image, as a running agent would be).
WARMUP=${WARMUP:-$REGISTRY/berth-fixtures/web:v1}
coproc SERVED { exec node "$WORK/build/bench/pull/pull.js" --serve "$WARMUP" --preload "$WORK/build/apps/agent/src/node-agent.js" --preload "$WORK/build/apps/agent/src/image-provider.js"; }
trap 'kill "$SERVED_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
read -r -t 60 ready <&"${SERVED[0]}"
test "$ready" = ready

echo "## Pull + unpack of a ${SIZE_MB} MB single-layer image ($REGISTRY/$REPO:$TAG)"
echo
echo "uptime at start: $(uptime | sed 's/.*load/load/')"
echo
echo "| rep | Berth, running process (s) | Berth, fresh process (s) | skopeo copy + umoci unpack (s) | ratio running/peer | ratio fresh/peer | peak RSS running (MB) | peak RSS fresh (MB) |"
echo "|---|---|---|---|---|---|---|---|"
served_all=(); berth_all=(); peer_all=(); srss_all=(); rss_all=()
for rep in $(seq 1 "$REPS"); do
  sync
  echo "$REGISTRY/$REPO:$TAG $WORK/served-$rep" >&"${SERVED[1]}"
  read -r -t 120 sout <&"${SERVED[0]}"
  served=$(echo "$sout" | sed -E 's/.*"ms":([0-9]+).*/\1/')
  srss_kb=$(echo "$sout" | sed -E 's/.*"peakRssKb":([0-9]+).*/\1/')
  test -f "$WORK/served-$rep/snapshots/$(ls "$WORK/served-$rep/snapshots" | grep -v staging | head -1)/fs/random.bin"
  rm -rf "$WORK/served-$rep"

  sync
  t0=$(ms)
  out=$(node "$WORK/build/bench/pull/pull.js" "$REGISTRY/$REPO:$TAG" "$WORK/berth-$rep")
  t1=$(ms)
  berth=$((t1 - t0))
  rss_kb=$(echo "$out" | sed -E 's/.*"peakRssKb":([0-9]+).*/\1/')
  test -f "$WORK/berth-$rep/snapshots/$(ls "$WORK/berth-$rep/snapshots" | grep -v staging | head -1)/fs/random.bin"
  rm -rf "$WORK/berth-$rep"

  sync
  t0=$(ms)
  skopeo copy --quiet "docker://$REGISTRY/$REPO:$TAG" "oci:$WORK/peer-$rep:$TAG" --src-tls-verify=false
  umoci unpack --image "$WORK/peer-$rep:$TAG" "$WORK/peer-bundle-$rep" >/dev/null
  t1=$(ms)
  peer=$((t1 - t0))
  test -f "$WORK/peer-bundle-$rep/rootfs/random.bin"
  rm -rf "$WORK/peer-$rep" "$WORK/peer-bundle-$rep"

  sec() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1000 }'; }
  div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
  mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
  srss=$(mib "$srss_kb"); rss=$(mib "$rss_kb")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$rep" "$(sec "$served")" "$(sec "$berth")" "$(sec "$peer")" "$(div "$served" "$peer")" "$(div "$berth" "$peer")" "$srss" "$rss"
  served_all+=("$served"); berth_all+=("$berth"); peer_all+=("$peer"); srss_all+=("$srss"); rss_all+=("$rss")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
ms_=$(median "${served_all[@]}"); mb=$(median "${berth_all[@]}"); mp=$(median "${peer_all[@]}")
printf '| **median** | **%s** | **%s** | **%s** | **%s** | **%s** | **%s** | **%s** |\n' "$(sec "$ms_")" "$(sec "$mb")" "$(sec "$mp")" "$(div "$ms_" "$mp")" "$(div "$mb" "$mp")" "$(median "${srss_all[@]}")" "$(median "${rss_all[@]}")"
echo
echo "uptime at end: $(uptime | sed 's/.*load/load/')"
echo
echo "Targets (issue #4): ratio <= 0.50 and Berth peak RSS < 150 MB. 'Running process' is the agent's"
echo "per-pull cost (timed inside a long-lived process that has also loaded the agent's modules;"
echo "RSS = VmHWM reset before each pull, so it includes everything the process holds). 'Fresh process' adds node start-up + module loading"
echo "(~0.15-0.2 s) that a running agent does not pay per pull; the peer's times include its start-up."
