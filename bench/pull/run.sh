#!/usr/bin/env bash
# Pull benchmark: Berth's streaming pull+unpack vs skopeo copy + umoci unpack, same image, same run.
# Builds a one-layer image holding SIZE_MB of random (incompressible) bytes with umoci, pushes it
# to the local registry with skopeo, then alternates the two pullers REPS times on fresh dirs.
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

# 1. Compile the Berth entry point (path aliases resolved by .swcrc).
(cd "$ROOT" && npx --no-install swc bench/pull/pull.ts libs/oci/src -d "$WORK/build" --config-file .swcrc --ignore '**/*.spec.ts' >/dev/null 2>&1)
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

echo "## Pull + unpack of a ${SIZE_MB} MB single-layer image ($REGISTRY/$REPO:$TAG)"
echo
echo "| rep | Berth pull+unpack (s) | skopeo copy + umoci unpack (s) | ratio Berth/peer | Berth peak RSS (MB) |"
echo "|---|---|---|---|---|"
berth_all=(); peer_all=(); rss_all=()
for rep in $(seq 1 "$REPS"); do
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

  ratio=$(awk -v a="$berth" -v b="$peer" 'BEGIN { printf "%.2f", a / b }')
  rss=$(awk -v k="$rss_kb" 'BEGIN { printf "%.0f", k / 1024 }')
  printf '| %s | %.2f | %.2f | %s | %s |\n' "$rep" "$(awk -v x="$berth" 'BEGIN{print x/1000}')" "$(awk -v x="$peer" 'BEGIN{print x/1000}')" "$ratio" "$rss"
  berth_all+=("$berth"); peer_all+=("$peer"); rss_all+=("$rss")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
mb=$(median "${berth_all[@]}"); mp=$(median "${peer_all[@]}"); mr=$(median "${rss_all[@]}")
printf '| **median** | **%.2f** | **%.2f** | **%s** | **%s** |\n' "$(awk -v x="$mb" 'BEGIN{print x/1000}')" "$(awk -v x="$mp" 'BEGIN{print x/1000}')" "$(awk -v a="$mb" -v b="$mp" 'BEGIN { printf "%.2f", a / b }')" "$mr"
echo
echo "Targets: ratio <= 0.50, Berth peak RSS < 150 MB. Wall times include process start-up for both sides."
