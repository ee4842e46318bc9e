#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: formatting, vet,
# staticcheck, actionlint, the unit, golden and binary tests (with the race
# detector), and a short fuzzing pass over each fuzz target.
#
#   ./hack/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=hack/tools.sh
. hack/tools.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $unformatted ]]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...
echo "== actionlint"
actionlint

echo "== go test"
go test -race -count=1 ./...

echo "== fuzz (${FUZZTIME:=10s} per target)"
go test -run='^$' -fuzz='^FuzzParseRule$' -fuzztime="$FUZZTIME" ./internal/meta
go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime="$FUZZTIME" ./internal/ghevent
