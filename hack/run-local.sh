#!/usr/bin/env bash
# Runs the action's main job on this machine, the way GitHub's runner starts
# it, on an embedded default: it installs and starts BuildKit, a registry
# and a Docker daemon (hack/e2e), builds the example app of testdata/app for
# linux/amd64 and linux/arm64, pushes it, prints the outputs and the step
# summary, and stops the services. GitHub's API is a local stand-in
# (hack/runlocal): nothing calls api.github.com. Needs root.
#
#   ./hack/run-local.sh [--image] [EVENT] [INPUT_NAME=value ...]
#
# EVENT is a fixture of testdata/events (default push-main). Extra
# arguments are inputs, e.g. INPUT_DRY-RUN=true. Without --image the
# action's binary runs with the runner's environment against BuildKit and a
# registry on 127.0.0.1. With --image the action's image is built from the
# Dockerfile with `docker build` and started with the runner's `docker run`
# (internal/runneremu) on a job network with a registry service over HTTPS.
# SBOMs are written; the cleanup is off (it needs GHCR's Packages API), and so
# is the vulnerability scan, since Trivy's database cannot be downloaded here (INPUT_SCAN=true with INPUT_TRIVY-CACHE-DIR=DIR
# scans against a database in DIR).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode=()
if [[ ${1:-} == --image ]]; then
  mode=(-image)
  shift
fi
event=${1:-push-main}
shift || true
[[ -f testdata/events/$event.json ]] || {
  echo "no event fixture testdata/events/$event.json; choose one of:" $(basename -s .json testdata/events/*.json) >&2
  exit 2
}
work=$(mktemp -d /tmp/phialo-local.XXXXXX)
cleanup() { hack/e2e/down.sh "$work/services" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

if ((${#mode[@]})); then
  hack/e2e/install.sh buildkit buildx trivy docker
else
  hack/e2e/install.sh buildkit buildx
fi
# shellcheck source=hack/e2e/env.sh
. hack/e2e/env.sh
if ((${#mode[@]})); then
  PHIALO_E2E_DOCKER=1 hack/e2e/up.sh "$work/services" >/dev/null
else
  PHIALO_E2E_DOCKER=0 hack/e2e/up.sh "$work/services" >/dev/null
  CGO_ENABLED=0 go build -trimpath -o "$work/phialo-image-action" .
  CGO_ENABLED=0 go build -trimpath -o "$work/phialo-sbom" ./cmd/phialo-sbom
  testdata/app/build.sh "$work/app"
fi
go run ./hack/runlocal -env "$work/services/env" -work "$work" "${mode[@]}" "$event" "$@"
