#!/usr/bin/env bash
# Runs the action's main job on this machine, the way GitHub's runner starts
# it (env only, an event payload, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY), on
# an embedded default: it installs and starts BuildKit and a registry on
# 127.0.0.1 (hack/e2e), builds the example app of testdata/app for
# linux/amd64 and linux/arm64, pushes it to that registry, prints the
# outputs and the step summary, and stops the services. Needs root.
#
#   ./hack/run-local.sh [EVENT] [INPUT_NAME=value ...]
#
# EVENT is a fixture of testdata/events (default push-main). Extra
# arguments are added to the environment, e.g. INPUT_DRY-RUN=true. SBOMs
# are written; the vulnerability scan is off, since Trivy's database cannot
# be downloaded here (INPUT_SCAN=true with INPUT_TRIVY-CACHE-DIR=DIR scans
# against a database in DIR).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
event=${1:-push-main}
shift || true
[[ -f testdata/events/$event.json ]] || {
  echo "no event fixture testdata/events/$event.json; choose one of:" $(basename -s .json testdata/events/*.json) >&2
  exit 2
}
work=$(mktemp -d /tmp/phialo-local.XXXXXX)
cleanup() { hack/e2e/down.sh "$work/services" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

hack/e2e/install.sh buildkit buildx
# shellcheck source=hack/e2e/env.sh
. hack/e2e/env.sh
hack/e2e/up.sh "$work/services" >/dev/null
# shellcheck source=/dev/null
. "$work/services/env"
CGO_ENABLED=0 go build -trimpath -o "$work/phialo-image-action" .
CGO_ENABLED=0 go build -trimpath -o "$work/phialo-sbom" ./cmd/phialo-sbom
testdata/app/build.sh "$work/app"
mkdir "$work/runner"

# shellcheck disable=SC2046 # the fixture's .env holds KEY=VALUE words
env -i PATH="$PATH" HOME="$HOME" $(cat "testdata/events/$event.env") \
  GITHUB_ACTIONS=true GITHUB_RUN_ID=1 \
  GITHUB_REPOSITORY=barde/phialoastro GITHUB_REPOSITORY_OWNER=barde GITHUB_ACTOR=barde \
  GITHUB_EVENT_PATH="$PWD/testdata/events/$event.json" \
  GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary" \
  RUNNER_TEMP="$work/runner" \
  INPUT_IMAGES="$PHIALO_REGISTRY/barde/phialoastro" \
  INPUT_CONTEXT="$work/app" \
  INPUT_BUILDKIT-ENDPOINT="$BUILDKIT_HOST" \
  INPUT_CACHE=registry \
  GITHUB_WORKSPACE="$work/workspace" \
  INPUT_SCAN=false INPUT_UPLOAD-SARIF=false \
  "$@" \
  "$work/phialo-image-action"

echo
echo "== GITHUB_OUTPUT"
cat "$work/output"
echo
echo "== SBOM files"
ls -l "$work/workspace/sbom" 2>/dev/null || true
echo
echo "== GITHUB_STEP_SUMMARY"
cat "$work/summary"
