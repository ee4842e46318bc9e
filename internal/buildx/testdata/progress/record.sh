#!/usr/bin/env bash
# Re-records the rawjson progress fixtures in this directory from real builds
# against a local BuildKit (hack/e2e). Run from anywhere, as root:
#
#   internal/buildx/testdata/progress/record.sh
#
# then `go test ./internal/buildx/ -run TestReadProgressGolden -updateProgress`
# to refresh the golden logs (*.log.golden), and review the diff: digests,
# timestamps and durations change with every recording, and so may how
# BuildKit splits output into log entries. The Dockerfiles are in src/, the
# program their RUN steps run in app/. Needs root, hack/e2e's tools and
# qemu-user-static (for the linux/arm64 RUN of multiplatform).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../../.." && pwd)
bash "$root/hack/e2e/install.sh" buildkit buildx >&2
# shellcheck source=/dev/null
. "$root/hack/e2e/env.sh"

work=$(mktemp -d /tmp/progress-rec.XXXXXX)
state=$work/state
export DOCKER_CONFIG=$work/docker
builder=progress-rec-$$
cleanup() {
  buildx rm "$builder" >/dev/null 2>&1 || true
  bash "$root/hack/e2e/down.sh" "$state" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$DOCKER_CONFIG"
bash "$root/hack/e2e/up.sh" "$state" >&2
# shellcheck source=/dev/null
. "$state/env"
buildx create --name "$builder" --driver remote "$BUILDKIT_HOST" >&2

# One build context per Dockerfile in src/, each with the app binary: as
# app (linux/amd64) and as app-amd64 and app-arm64.
for arch in amd64 arm64; do
  (cd "$here/app" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -o "$work/app-$arch" main.go)
done
cp "$work/app-amd64" "$work/app"
for d in "$here"/src/*/; do
  name=$(basename "$d")
  mkdir -p "$work/ctx/$name"
  cp "$d/Dockerfile" "$work/app" "$work/app-amd64" "$work/app-arm64" "$work/ctx/$name/"
done

# record NAME CONTEXT [PLATFORMS]: one build, whose stderr (the rawjson
# stream and the plain lines buildx prints around it) becomes NAME.jsonl.
# A failing build is recorded too. No --output: the result stays in the
# build cache (buildx warns about that in plain text).
record() {
  local name=$1 ctx=$2 platforms=${3:-linux/amd64} rc=0
  buildx --builder "$builder" build --progress=rawjson --platform "$platforms" \
    "$work/ctx/$ctx" >/dev/null 2>"$here/$name.jsonl" || rc=$?
  echo "$name: exit $rc, $(wc -c <"$here/$name.jsonl") bytes" >&2
}

record success-cold success   # (1) a fresh buildkitd: nothing cached
record success-cached success # (2) the same build again
record failure failure        # (3) RUN prints lines, exits 1
record warnings warnings      # (4) lint warnings from the Dockerfile frontend
# (5) two platforms (the arm64 RUN under qemu), a RUN that prints 25 lines;
# the lint warnings come once, not once per platform
record multiplatform multiplatform linux/amd64,linux/arm64
record syntax-error syntax-error # (6) fails before any step
