#!/usr/bin/env bash
# Measures the action's overhead over a plain `buildx build` (SBOM and scan
# off, as buildx does neither): the same
# context (the example app, linux/amd64 and linux/arm64, pushed with
# provenance and the registry cache) built through the action, and through
# the exact buildx argv the action prints in its plan, on a builder made
# beforehand. Each side runs warm (fully cached) RUNS times (default 5);
# the script prints the cold build, both medians and their ratio.
#
#   ./hack/bench-build.sh [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-5}
work=$(mktemp -d /tmp/phialo-bench.XXXXXX)
cleanup() { hack/e2e/down.sh "$work/services" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
[[ -n ${PHIALO_BENCH_KEEP:-} ]] && trap "hack/e2e/down.sh $work/services >/dev/null 2>&1 || true; echo kept $work" EXIT

hack/e2e/install.sh buildkit buildx >&2
# shellcheck source=hack/e2e/env.sh
. hack/e2e/env.sh
hack/e2e/up.sh "$work/services" >/dev/null 2>&1
# shellcheck source=/dev/null
. "$work/services/env"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/phialo-image-action" .
testdata/app/build.sh "$work/app"
mkdir -p "$work/runner"

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

action() {
  env -i PATH="$PATH" HOME="$HOME" $(cat testdata/events/push-main.env) \
    GITHUB_ACTIONS=true GITHUB_RUN_ID=1 \
    GITHUB_REPOSITORY=barde/phialoastro GITHUB_REPOSITORY_OWNER=barde GITHUB_ACTOR=barde \
    GITHUB_API_URL=http://127.0.0.1:9 \
    GITHUB_EVENT_PATH="$PWD/testdata/events/push-main.json" \
    GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary" \
    RUNNER_TEMP="$work/runner" SOURCE_DATE_EPOCH=1719568800 \
    INPUT_IMAGES="$PHIALO_REGISTRY/barde/phialoastro" \
    INPUT_CONTEXT="$work/app" \
    INPUT_BUILDKIT-ENDPOINT="$BUILDKIT_HOST" \
    INPUT_CACHE=registry \
    INPUT_SBOM=false INPUT_SCAN=false \
    "$@" \
    "$work/phialo-image-action"
}

start=$(now)
action >"$work/cold.log" 2>&1
cold=$(ms "$start" "$(now)")

# The exact argv the action ran, as its log prints it (shell-quoted, one
# argument per line), on the bench's own builder and metadata file.
argv=$(sed -n '/^buildx \\$/,/[^\\]$/p' "$work/cold.log" |
  sed -e '/^  --builder /d' -e "s|^  --metadata-file [^ ]*|  --metadata-file $work/raw-metadata.json|")
grep -q -- '--push' <<<"$argv" || { echo "no --push in the action's argv:" >&2; echo "$argv" >&2; exit 1; }

export BUILDX_CONFIG=$work/buildx DOCKER_CONFIG=$work/docker
mkdir -p "$DOCKER_CONFIG"
buildx create --name bench --driver remote "$BUILDKIT_HOST" >/dev/null
buildx inspect --bootstrap --builder bench >/dev/null

run_action() {
  local start took build
  start=$(now)
  action >"$work/action.log" 2>&1
  took=$(ms "$start" "$(now)")
  action_times+=("$took")
  # The action's own time: its wall time less the build-time it reports
  # (buildx's run, timed inside the action).
  build=$(sed -n '/^build-time<</{n;p;}' "$work/output" | tail -1)
  own_times+=("$(awk -v t="$took" -v b="$build" 'BEGIN { printf "%.0f", t - b * 1000 }')")
}
run_raw() {
  local start
  start=$(now)
  BUILDX_BUILDER=bench eval "$argv" >"$work/raw.log" 2>&1
  raw_times+=("$(ms "$start" "$(now)")")
}
# Pairs alternate which side runs first, so a drift of the machine's load
# does not favour one side.
action_times=() raw_times=() own_times=()
for ((i = 0; i < runs; i++)); do
  if ((i % 2)); then run_raw; run_action; else run_action; run_raw; fi
done
grep -q '| Steps from cache | 4 of 4 |' "$work/summary" || {
  echo "the warm action build was not fully cached:" >&2
  cat "$work/summary" >&2
  exit 1
}

a=$(printf '%s\n' "${action_times[@]}" | median)
r=$(printf '%s\n' "${raw_times[@]}" | median)
echo "cold build through the action: ${cold} ms"
echo "warm (cached) builds, $runs runs each: action ${action_times[*]} ms; raw buildx ${raw_times[*]} ms"
o=$(printf '%s\n' "${own_times[@]}" | median)
p=$(for ((i = 0; i < runs; i++)); do awk -v a="${action_times[i]}" -v r="${raw_times[i]}" 'BEGIN { printf "%.4f\n", a / r }'; done | median)
echo "the action's own time per run (wall time less the build-time it reports): ${own_times[*]} ms; median $o ms"
awk -v a="$a" -v r="$r" -v p="$p" -v o="$o" 'BEGIN {
  printf "own overhead: median %.0f ms = %.1f%% of the raw cached rebuild (target under 5%%)\n", o, o / r * 100
  printf "median wall time: action %.0f ms, raw buildx %.0f ms; ratio of medians %.3f, median of paired ratios %.3f\n", a, r, a / r, p }'
