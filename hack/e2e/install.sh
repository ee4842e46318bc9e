#!/usr/bin/env bash
# Installs what the end-to-end tests need: Debian packages (runc, registry,
# qemu, busybox; with "docker" also Debian's docker.io: dockerd, containerd)
# and Go-built tools (buildkitd/buildctl, buildx, trivy).
#
#   hack/e2e/install.sh [buildkit] [buildx] [trivy] [docker]
#                                            (default: buildkit buildx)
#
# Go tools are built from the Go module proxy (nothing else is reachable) and
# cached per version under $PHIALO_CACHE/bin/<tool>-<version>/, so a second run
# takes seconds and a version bump rebuilds. They build at the same time.
# $PHIALO_CACHE/bin/current/ holds symlinks to the versions below; source
# hack/e2e/env.sh to put it on PATH.
# Stdout gets only one status line per step; everything else goes to stderr.
set -euo pipefail

BUILDKIT_VERSION=v0.34.2
BUILDX_VERSION=v0.38.2
TRIVY_VERSION=v0.74.0

APT_PACKAGES=(runc docker-registry qemu-user-static binfmt-support busybox-static ca-certificates)
# Debian 12's docker.io: dockerd 20.10 with containerd and runc.
DOCKER_APT_PACKAGES=(docker.io)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

PHIALO_CACHE=${PHIALO_CACHE:-$HOME/.cache/phialo-image-action}
bin_root=$PHIALO_CACHE/bin
current=$bin_root/current

usage() { log "usage: $0 [buildkit] [buildx] [trivy] [docker]"; exit 2; }

(($#)) || set -- buildkit buildx
tools=()
for t in "$@"; do
  case $t in buildkit | buildx | trivy | docker) ;; *) usage ;; esac
  # Twice the same word would start two builds racing on one cache dir.
  [[ " ${tools[*]} " == *" $t "* ]] || tools+=("$t")
done
if [[ " ${tools[*]} " == *" docker "* ]]; then
  APT_PACKAGES+=("${DOCKER_APT_PACKAGES[@]}")
fi

# kill_tree PID: TERM PID and all its descendants. Each process is stopped
# before its children are listed, so it cannot start new ones meanwhile.
kill_tree() {
  local pid=$1 child
  kill -STOP "$pid" 2>/dev/null || return 0
  for child in $(ps -o pid= --ppid "$pid"); do
    kill_tree "$child"
  done
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true
}

# Temp build dirs live beside the cache so the final mv is an atomic rename.
# On any exit, builds still running are stopped and, with the lock held (so
# no other run builds), all temp dirs go: an interrupt leaves no half cache.
locked=0
job_pids=()
cleanup() {
  local pid
  for pid in "${job_pids[@]}"; do
    kill_tree "$pid"
  done
  for pid in "${job_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  ((locked == 0)) || rm -rf "$bin_root"/.build-*
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$bin_root" "$current"
# Two runs at once (a developer's tests and a script) would build twice and
# race on the rename; serialize them.
exec 9>"$PHIALO_CACHE/.install.lock"
flock 9
locked=1
# Builds killed hard (no EXIT trap) leave temp dirs; with the lock held none
# of them is in use.
rm -rf "$bin_root"/.build-*

install_apt() {
  local start missing=() p
  start=$(now)
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    echo "apt: present ($(since "$start")s)"
    return
  fi
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  echo "apt: installed ${missing[*]} ($(since "$start")s)"
}

# Go commands run from an empty dir outside any module, with our own flags,
# so neither the project's go.mod nor the caller's GOFLAGS get involved.
go_env() {
  env GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 "$@"
}

# build_buildkit OUT: `go install` refuses buildkit (its go.mod has exclude
# directives), so build it inside its module cache dir instead.
build_buildkit() {
  local out=$1 dir pkg=github.com/moby/buildkit
  dir=$(cd "$out" && go_env go mod download -json "$pkg@$BUILDKIT_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') ||
    die "go mod download $pkg@$BUILDKIT_VERSION failed"
  [[ -n $dir && -d $dir ]] || die "go mod download $pkg@$BUILDKIT_VERSION gave no Dir"
  (cd "$dir" && go_env go build -trimpath \
    -ldflags "-s -w -X $pkg/version.Version=$BUILDKIT_VERSION -X $pkg/version.Package=$pkg" \
    -o "$out/" ./cmd/buildkitd ./cmd/buildctl)
}

build_buildx() {
  local out=$1 pkg=github.com/docker/buildx
  (cd "$out" && go_env GOBIN="$out" go install -trimpath \
    -ldflags "-s -w -X $pkg/version.Version=$BUILDX_VERSION -X $pkg/version.Package=$pkg" \
    "$pkg/cmd/buildx@$BUILDX_VERSION")
}

# Trivy needs encoding/json/v2, which Go only offers behind GOEXPERIMENT=jsonv2.
build_trivy() {
  local out=$1 pkg=github.com/aquasecurity/trivy
  (cd "$out" && go_env GOEXPERIMENT=jsonv2 GOBIN="$out" go install -trimpath \
    -ldflags "-s -w -X $pkg/pkg/version/app.ver=${TRIVY_VERSION#v}" \
    "$pkg/cmd/trivy@$TRIVY_VERSION")
}

# ensure_tool NAME VERSION BINARY...: build NAME unless its cache dir exists,
# then point bin/current/BINARY at the cached binaries.
ensure_tool() {
  local name=$1 version=$2 start dir tmp b state=cached
  shift 2
  start=$(now)
  dir=$bin_root/$name-$version
  if [[ ! -d $dir ]]; then
    command -v go >/dev/null || die "go is not on PATH; it is needed to build $name"
    log "$name $version: building (takes minutes on 2 cores)"
    tmp=$(mktemp -d "$bin_root/.build-$name-$version.XXXXXX")
    "build_$name" "$tmp"
    for b in "$@"; do
      [[ -x $tmp/$b ]] || die "$name build produced no $b"
    done
    chmod 755 "$tmp"
    mv -T "$tmp" "$dir"
    state=built
  fi
  for b in "$@"; do
    [[ -x $dir/$b ]] || die "$dir/$b missing: remove $dir and run again"
    # Replace each link by an atomic rename, so readers never see it missing.
    ln -sfn "../$name-$version/$b" "$current/.$b.new"
    mv -T "$current/.$b.new" "$current/$b"
  done
  echo "$name $version: $state ($(since "$start")s)"
}

# check_docker: the daemon's parts that hack/e2e/up.sh starts.
check_docker() {
  local start b
  start=$(now)
  for b in dockerd containerd containerd-shim-runc-v2 runc; do
    command -v "$b" >/dev/null || die "$b missing after installing ${DOCKER_APT_PACKAGES[*]}"
  done
  echo "docker: $(dockerd --version) ($(since "$start")s)"
}

install_apt
# Each Go build runs as a background job: on 2 cores they still overlap
# usefully (module downloads, single-threaded links). A job writes its own
# status line; a failed job fails the script once all jobs have ended.
job_names=()
for t in "${tools[@]}"; do
  case $t in
    buildkit) ensure_tool buildkit "$BUILDKIT_VERSION" buildkitd buildctl & ;;
    buildx)
      # A subshell, not `a && b`: errexit must stay on inside ensure_tool.
      (
        ensure_tool buildx "$BUILDX_VERSION" buildx
        # The docker CLI finds plugins by this name (copy it into
        # $DOCKER_CONFIG/cli-plugins/ to use it as `docker buildx`).
        ln -sfn buildx "$current/.docker-buildx.new"
        mv -T "$current/.docker-buildx.new" "$current/docker-buildx"
      ) &
      ;;
    trivy) ensure_tool trivy "$TRIVY_VERSION" trivy & ;;
    docker)
      check_docker
      continue
      ;;
  esac
  job_pids+=("$!")
  job_names+=("$t")
done
failed=()
for i in "${!job_pids[@]}"; do
  wait "${job_pids[i]}" || failed+=("${job_names[i]}")
done
job_pids=()
((${#failed[@]} == 0)) || die "building ${failed[*]} failed"
