#!/usr/bin/env bash
# Measures the action's image as GitHub's runner meets it: the time of a
# cold `docker build` of the Dockerfile (no build cache, as on a fresh
# runner for a `@main` or SHA-pinned use; the bases are local stand-ins, so
# pulling them is not counted), the time of a cached rebuild, and the
# image's size on disk and compressed in a registry (what a `@v1` job
# pulls). Uses the Docker daemon, stand-ins and registry of hack/e2e, and
# empties that daemon's build cache first.
#
#   ./hack/bench-image.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/e2e/install.sh buildkit buildx trivy docker >/dev/null
# shellcheck source=hack/e2e/env.sh
. hack/e2e/env.sh
state=$(mktemp -d /tmp/phialo-bench.XXXXXX)
trap 'hack/e2e/down.sh "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
PHIALO_E2E_DOCKER=1 hack/e2e/up.sh "$state" >/dev/null
# shellcheck source=/dev/null
. "$state/env"
export DOCKER_HOST DOCKER_CONFIG=$state/docker-config DOCKER_BUILDKIT=1
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$(command -v buildx)" "$DOCKER_CONFIG/cli-plugins/docker-buildx"

image=phialo-bench/action:$$
docker builder prune --all --force >/dev/null
start=$(date +%s.%N)
docker build -q -t "$image" -f Dockerfile . >/dev/null
cold=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
start=$(date +%s.%N)
docker build -q -t "$image" -f Dockerfile . >/dev/null
warm=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
echo "docker build, cold (no build cache): ${cold}s"
echo "docker build, cached: ${warm}s"
echo "on disk: $(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.1f MB", $1 / 1e6 }')"
docker tag "$image" "$PHIALO_REGISTRY/phialo-bench/action:size"
docker push -q "$PHIALO_REGISTRY/phialo-bench/action:size" >/dev/null
go run ./hack/imagesize "$PHIALO_REGISTRY/phialo-bench/action:size"
docker rmi -f "$image" "$PHIALO_REGISTRY/phialo-bench/action:size" >/dev/null
