#!/usr/bin/env bash
# Proves the whole end-to-end chain on this machine: install the tools, start
# buildkitd and a registry, build a two-platform image with a RUN step for
# each platform (arm64 under qemu), push it, and check the pushed index.
#
#   hack/e2e/smoke.sh            (PHIALO_E2E_KEEP=1 keeps the temp dir)
#
# All state (daemons' data, buildx builder, docker config) lives in one temp
# dir; a trap stops the daemons by PID whatever happens.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

t0=$(now)
timings=()
# step NAME CMD...: run CMD and record how long it took.
step() {
  local name=$1 start
  shift
  start=$(now)
  # Explicit: errexit is off when a caller writes `step ... || handler`.
  "$@" || return
  timings+=("$name $(since "$start")s")
}

tmp=$(mktemp -d /tmp/phialo-smoke.XXXXXX)
state=$tmp/state
cleanup() {
  local rc=$?
  # The env file exists only while daemons from up.sh may be running.
  if [[ -f $state/env ]]; then
    "$here/down.sh" "$state" || rc=1
  fi
  if [[ ${PHIALO_E2E_KEEP:-} == 1 ]]; then
    log "smoke: kept $tmp"
  else
    rm -rf "$tmp" || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step install "$here/install.sh"
# shellcheck source=SCRIPTDIR/env.sh
. "$here/env.sh"

step up "$here/up.sh" "$state"
# shellcheck source=/dev/null
. "$state/env"
: "${BUILDKIT_HOST:?missing in $state/env}" "${PHIALO_REGISTRY:?missing in $state/env}"

# A private docker config: the builder we create and buildx's state stay in
# the temp dir, and the user's ~/.docker is never read or written.
export DOCKER_CONFIG=$tmp/docker
mkdir -p "$DOCKER_CONFIG/cli-plugins"
cp "$PHIALO_BIN/buildx" "$DOCKER_CONFIG/cli-plugins/docker-buildx"
builder=phialo-smoke
step builder docker buildx create --name "$builder" --driver remote "$BUILDKIT_HOST" >/dev/null
export BUILDX_BUILDER=$builder

# The context: a static busybox as the shell of a scratch image, plus a tiny
# Go program built for each target architecture. The amd64 busybox runs
# natively even in the arm64 image, so only the arm64 probe proves that
# foreign RUN steps really execute under qemu.
ctx=$tmp/ctx
mkdir -p "$ctx" "$tmp/probe"
cp /bin/busybox "$ctx/busybox"
cat >"$tmp/probe/go.mod" <<'GO'
module probe

go 1.21
GO
cat >"$tmp/probe/main.go" <<'GO'
// probe writes the architecture it was compiled for to the file in argv[1].
package main

import (
	"os"
	"runtime"
)

func main() {
	if err := os.WriteFile(os.Args[1], []byte(runtime.GOARCH+"\n"), 0o644); err != nil {
		panic(err)
	}
}
GO
build_probes() {
  local arch
  for arch in amd64 arm64; do
    (cd "$tmp/probe" && env GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
      GOOS=linux GOARCH="$arch" go build -trimpath -o "$ctx/probe-$arch" .)
  done
}
step probes build_probes
# No `# syntax=` line: it would pull a frontend image from Docker Hub.
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
ARG TARGETARCH
COPY busybox /bin/busybox
COPY busybox /bin/sh
COPY probe-${TARGETARCH} /bin/probe
RUN ["/bin/busybox", "sh", "-c", "echo hi > /hello"]
RUN ["/bin/probe", "/arch"]
RUN echo "built for $TARGETARCH" > /built
DOCKERFILE

ref=$PHIALO_REGISTRY/smoke:$(date +%s)
meta=$tmp/metadata.json
step build docker buildx build \
  --platform linux/amd64,linux/arm64 \
  --provenance=mode=max \
  --metadata-file "$meta" \
  --push -t "$ref" \
  --progress=plain \
  "$ctx" 2>"$tmp/build.log" ||
  { tail -n 60 "$tmp/build.log" >&2; die "build failed"; }

digest=$(sed -n 's/^[[:space:]]*"containerimage.digest":[[:space:]]*"\([^"]*\)".*/\1/p' "$meta")
[[ $digest == sha256:* ]] || { cat "$meta" >&2; die "no containerimage.digest in $meta"; }
echo "smoke: pushed $ref@$digest"

check_index() {
  local out raw p
  out=$(docker buildx imagetools inspect "$ref")
  raw=$(docker buildx imagetools inspect --raw "$ref")
  grep -q "^Digest:[[:space:]]*$digest\$" <<<"$out" ||
    { log "$out"; die "registry digest differs from metadata digest $digest"; }
  for p in linux/amd64 linux/arm64; do
    grep -q "Platform:[[:space:]]*$p\$" <<<"$out" || { log "$out"; die "platform $p missing"; }
  done
  # One provenance attestation manifest per platform.
  [[ $(grep -c '"vnd.docker.reference.type": *"attestation-manifest"' <<<"$raw") == 2 ]] ||
    { log "$raw"; die "expected 2 attestation manifests"; }
}
step inspect check_index
echo "smoke: index has linux/amd64, linux/arm64 and their provenance"

start=$(now)
"$here/down.sh" "$state"
timings+=("down $(since "$start")s")
timings+=("total $(since "$t0")s")
joined=$(printf '%s, ' "${timings[@]}")
echo "smoke: OK (${joined%, })"
