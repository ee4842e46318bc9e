#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: formatting, vet,
# staticcheck, actionlint, the unit, golden, binary and end-to-end tests
# (with the race detector), and a short fuzzing pass over each fuzz target.
#
# The end-to-end tests need root: hack/e2e/install.sh installs runc, the
# registry, qemu and Docker (docker.io) from Debian and builds BuildKit,
# buildx and Trivy from the Go module proxy (cached under
# ~/.cache/phialo-image-action), and hack/e2e/up.sh starts buildkitd and a
# registry on 127.0.0.1 and a Docker daemon with stand-in images for the
# runner emulation (internal/runneremu), all stopped by PID when the tests
# end.
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
actionlint docs/examples/*.yml

echo "== end-to-end services"
hack/e2e/install.sh buildkit buildx trivy docker
# shellcheck source=hack/e2e/env.sh
. hack/e2e/env.sh
state=$(mktemp -d /tmp/phialo-e2e.XXXXXX)
trap 'hack/e2e/down.sh "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
hack/e2e/up.sh "$state"
export PHIALO_E2E_ENV=$state/env
# BUILDKIT_HOST and PHIALO_REGISTRY for the tests that read them directly.
set -a
# shellcheck source=/dev/null
. "$state/env"
set +a

echo "== go test"
# -json through hack/testsummary: go test's ok/FAIL lines, then the skipped
# tests, then "N passed, N failed, N skipped"; a skip that its allow-list
# does not name fails the run.
go build -o "$state/testsummary" ./hack/testsummary
go test -json -race -count=1 -timeout 30m ./... | "$state/testsummary"

# A short fuzzing pass over every fuzz target of the repository, found by
# name, bounded by a count of inputs rather than a time: a time bound can
# end with a worker still busy and a spurious failure.
echo "== fuzz (${FUZZN:=50000} inputs per target)"
targets=$(grep -rHEo --include='*_test.go' --exclude-dir=testdata --exclude-dir=.git \
  '^func Fuzz[A-Za-z0-9_]*\(' . | sed -E 's/^\.\/([^:]*):func (Fuzz[A-Za-z0-9_]*)\($/\1 \2/' | sort)
[[ -n $targets ]] || { echo "no fuzz targets found" >&2; exit 1; }
while read -r file fn; do
  echo "-- $fn ($(dirname "$file"))"
  go test -run='^$' -fuzz="^$fn\$" -fuzztime="${FUZZN}x" "./$(dirname "$file")"
done <<<"$targets"
