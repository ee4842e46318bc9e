#!/usr/bin/env bash
# Runs the action on this machine the way GitHub's runner starts it: env
# only, an event payload, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files. The
# event is one of testdata/events (default: push-main). The run is a dry
# run: it derives tags, labels and annotations and prints the plan.
#
#   ./hack/run-local.sh [push-main|push-tag|pull_request|...] [INPUT_NAME=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
event=${1:-push-main}
shift || true
[[ -f testdata/events/$event.json ]] || {
  echo "no event fixture testdata/events/$event.json; choose one of:" $(basename -s .json testdata/events/*.json) >&2
  exit 2
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$work/phialo-image-action" .

# shellcheck disable=SC2046 # the fixture's .env holds KEY=VALUE words
env -i PATH="$PATH" HOME="$HOME" $(cat "testdata/events/$event.env") \
  GITHUB_ACTIONS=true \
  GITHUB_REPOSITORY=barde/phialoastro GITHUB_REPOSITORY_OWNER=barde GITHUB_ACTOR=barde \
  GITHUB_EVENT_PATH="$PWD/testdata/events/$event.json" \
  GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary" \
  RUNNER_TEMP="$work" \
  INPUT_DRY-RUN=true "$@" \
  "$work/phialo-image-action"

echo
echo "== GITHUB_OUTPUT"
cat "$work/output"
echo
echo "== GITHUB_STEP_SUMMARY"
cat "$work/summary"
