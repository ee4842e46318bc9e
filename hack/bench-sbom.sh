#!/usr/bin/env bash
# Measures SBOM generation: the example app (linux/amd64 and linux/arm64) is
# pushed to a local registry, then its SPDX SBOM is made RUNS times each
# (default 5) by the syft CLI for one platform, by phialo-sbom (the action's
# generator, the syft library of the same version) for one platform, and
# by phialo-sbom for both platforms at once. It prints the medians and the
# two ratios the action is held to: phialo-sbom / syft CLI for one
# platform (target: at most 1), and two platforms / one platform (target:
# under 1.3).
#
#   ./hack/bench-sbom.sh [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-5}
SYFT_VERSION=v1.57.1
work=$(mktemp -d /tmp/phialo-bench-sbom.XXXXXX)
cleanup() { hack/e2e/down.sh "$work/services" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

hack/e2e/install.sh buildkit buildx >&2
# shellcheck source=hack/e2e/env.sh
. hack/e2e/env.sh
syft_dir=$PHIALO_CACHE/tools/syft-$SYFT_VERSION
if [[ ! -x $syft_dir/syft ]]; then
  echo "building the syft CLI $SYFT_VERSION (once; cached in $syft_dir)" >&2
  CGO_ENABLED=0 GOBIN=$syft_dir.tmp go install "github.com/anchore/syft/cmd/syft@$SYFT_VERSION"
  rm -rf "$syft_dir" && mv "$syft_dir.tmp" "$syft_dir"
fi
hack/e2e/up.sh "$work/services" >/dev/null 2>&1
# shellcheck source=/dev/null
. "$work/services/env"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/" . ./cmd/phialo-sbom
testdata/app/build.sh "$work/app"
mkdir -p "$work/runner" "$work/sbom"

image=$PHIALO_REGISTRY/bench/sbom
env -i PATH="$PATH" HOME="$HOME" $(cat testdata/events/push-main.env) \
  GITHUB_REPOSITORY=barde/phialoastro GITHUB_API_URL=http://127.0.0.1:9 \
  GITHUB_EVENT_PATH="$PWD/testdata/events/push-main.json" \
  GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary" RUNNER_TEMP="$work/runner" \
  INPUT_IMAGES="$image" INPUT_CONTEXT="$work/app" INPUT_BUILDKIT-ENDPOINT="$BUILDKIT_HOST" \
  INPUT_CACHE=none INPUT_SBOM=false INPUT_SCAN=false \
  "$work/phialo-image-action" >"$work/build.log" 2>&1
amd64=$(sed -n 's/^| linux\/amd64 | `\(sha256:[0-9a-f]*\)`.*/\1/p' "$work/summary")
arm64=$(sed -n 's/^| linux\/arm64 | `\(sha256:[0-9a-f]*\)`.*/\1/p' "$work/summary")
[[ -n $amd64 && -n $arm64 ]] || { echo "no platform digests in the summary" >&2; cat "$work/summary" >&2; exit 1; }

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
target() { printf '{"ref":"%s@%s","platform":"%s"}' "$image" "$1" "$2"; }
one='{"targets":['$(target "$amd64" linux/amd64)'],"formats":["spdx-json"],"dir":"'$work/sbom'","name":"sbom"}'
two='{"targets":['$(target "$amd64" linux/amd64),$(target "$arm64" linux/arm64)'],"formats":["spdx-json"],"dir":"'$work/sbom'","name":"sbom"}'

time_ms() {
  local start
  start=$(now)
  "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  echo $((($(now) - start) / 1000000))
}
cli() {
  SYFT_CHECK_FOR_APP_UPDATE=false SYFT_REGISTRY_INSECURE_USE_HTTP=true \
    "$syft_dir/syft" scan -q "registry:$image@$amd64" -o "spdx-json=$work/sbom/cli.spdx.json"
}
lib() { "$work/phialo-sbom" <<<"$1"; }

cli_t=() one_t=() two_t=()
for ((i = 0; i < runs; i++)); do
  cli_t+=("$(time_ms cli)")
  one_t+=("$(time_ms lib "$one")")
  two_t+=("$(time_ms lib "$two")")
done
c=$(printf '%s\n' "${cli_t[@]}" | median)
o=$(printf '%s\n' "${one_t[@]}" | median)
t=$(printf '%s\n' "${two_t[@]}" | median)
echo "syft CLI, one platform: ${cli_t[*]} ms"
echo "phialo-sbom, one platform: ${one_t[*]} ms"
echo "phialo-sbom, two platforms: ${two_t[*]} ms"
awk -v c="$c" -v o="$o" -v t="$t" 'BEGIN {
  printf "medians: syft CLI %.0f ms, phialo-sbom one platform %.0f ms, two platforms %.0f ms\n", c, o, t
  printf "one platform, phialo-sbom / syft CLI: %.2f (target: at most 1)\n", o / c
  printf "two platforms / one platform: %.2f (target: under 1.3)\n", t / o }'
