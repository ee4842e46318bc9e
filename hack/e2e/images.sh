#!/usr/bin/env bash
# Builds stand-in images into the Docker daemon that hack/e2e/up.sh started,
# under the exact names the project's Dockerfile and the action use, from
# what this machine has: Docker Hub cannot be reached, and the daemon's
# `docker build` takes a local image for `FROM` when one of that exact name
# exists (no pull is tried), as `docker run` does.
#
#   DOCKER_HOST=unix://STATE/docker.sock hack/e2e/images.sh
#
# Each image is one layer made with `docker import` from a root directory
# filled here, and labelled phialo.e2e.inputs=<hash of its inputs>: the
# recipe (the functions below), versions, and the size and time of each file
# copied in. An image whose label matches is kept, so a run with everything
# in place takes about a second; any change rebuilds that image. Stdout gets
# one status line per image; everything else goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
# shellcheck source=SCRIPTDIR/env.sh
. "$here/env.sh"

: "${DOCKER_HOST:?set DOCKER_HOST to the daemon of hack/e2e/up.sh}"
export DOCKER_HOST

GO_VERSION=1.26.8
LABEL=phialo.e2e.inputs
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

tmp=$(mktemp -d /tmp/phialo-images.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# A private, empty client config: the user's ~/.docker is neither read nor
# written.
export DOCKER_CONFIG=$tmp/docker-config
mkdir -p "$DOCKER_CONFIG"

# need FILE...: each must exist, or the run fails naming what to install.
need() {
  local f
  for f in "$@"; do
    [[ -e $f ]] || die "$f not found: run hack/e2e/install.sh (with buildkit buildx trivy docker)"
  done
}

# stamp FILE...: what identifies a file's content cheaply (path, size,
# mtime), following symlinks. Hashing the bytes of /usr/local/go on every
# run would cost more than the whole cached run may take.
stamp() {
  need "$@"
  stat -L -c '%n %s %Y' "$@"
}

# copy_bin ROOT FILE DEST: FILE at ROOT/DEST, and when FILE is dynamically
# linked, its shared libraries and loader at the paths ldd gives.
copy_bin() {
  local root=$1 file=$2 dest=$3 lib
  mkdir -p "$root/$(dirname "$dest")"
  cp -L "$file" "$root/$dest"
  while read -r lib; do
    mkdir -p "$root/$(dirname "$lib")"
    cp -L "$lib" "$root/$lib"
  done < <(libs_of "$file")
}

# libs_of FILE: absolute paths of FILE's shared libraries (none when static).
libs_of() {
  ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true
}

# base_dirs ROOT: what every stand-in has: a CA bundle and a /tmp.
base_dirs() {
  local root=$1
  mkdir -p "$root/etc/ssl/certs" "$root/tmp"
  chmod 1777 "$root/tmp"
  cp -L "$CA_BUNDLE" "$root$CA_BUNDLE"
}

# --- moby/buildkit:buildx-stable-1: the default image of buildx's
# docker-container driver. Debian's runc is dynamic: it comes with its
# libraries; BuildKit prefers it under the name buildkit-runc.
inputs_buildkit() {
  stamp "$PHIALO_BIN/buildkitd" "$PHIALO_BIN/buildctl" /usr/sbin/runc "$CA_BUNDLE"
  # shellcheck disable=SC2046 # one argument per library path
  stamp $(libs_of /usr/sbin/runc)
}
fill_buildkit() {
  local root=$1
  base_dirs "$root"
  mkdir -p "$root/usr/bin" "$root/var/lib/buildkit"
  cp -L "$PHIALO_BIN/buildkitd" "$PHIALO_BIN/buildctl" "$root/usr/bin/"
  copy_bin "$root" /usr/sbin/runc /usr/bin/runc
  ln -s runc "$root/usr/bin/buildkit-runc"
}

# --- tonistiigi/binfmt: our binfmt program (hack/e2e/binfmt) with Debian's
# static emulators, named as in the real image. QEMU_PRESERVE_ARGV0=1 as in
# the released image: its handlers get the P flag, which Debian's qemu 7.2
# understands.
BINFMT_ARCHES=(aarch64 arm riscv64)
inputs_binfmt() {
  local a
  GOTOOLCHAIN=local go version
  dpkg-query -W qemu-user-static
  sha256sum "$repo"/hack/e2e/binfmt/*.go
  for a in "${BINFMT_ARCHES[@]}"; do
    stamp "/usr/bin/qemu-$a-static"
  done
}
fill_binfmt() {
  local root=$1 a qemu
  qemu=$(dpkg-query -W -f '${Version}' qemu-user-static)
  mkdir -p "$root/usr/bin" "$root/tmp"
  chmod 1777 "$root/tmp"
  (cd "$repo" && env GOWORK=off CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.revision=phialo-e2e -X main.qemuVersion=debian-$qemu" \
    -o "$root/usr/bin/binfmt" ./hack/e2e/binfmt)
  for a in "${BINFMT_ARCHES[@]}"; do
    cp -L "/usr/bin/qemu-$a-static" "$root/usr/bin/qemu-$a"
  done
}

# --- golang: the machine's Go toolchain, with busybox as the shell and the
# environment of the real image (GOPATH=/go, GOTOOLCHAIN=local, WORKDIR /go).
inputs_golang() {
  local v
  need /usr/local/go/bin/go /bin/busybox
  v=$(GOTOOLCHAIN=local /usr/local/go/bin/go version)
  [[ $v == "go version go$GO_VERSION "* ]] ||
    die "golang:$GO_VERSION-bookworm needs Go $GO_VERSION in /usr/local/go; it has: $v"
  echo "$v"
  stamp /usr/local/go/VERSION /usr/local/go/bin/go /bin/busybox "$CA_BUNDLE"
}
fill_golang() {
  local root=$1 applet
  base_dirs "$root"
  mkdir -p "$root/usr/local" "$root/bin" "$root/root" "$root/go/bin" "$root/go/src"
  chmod 1777 "$root/go"
  # Hard links when /tmp and /usr/local share a file system: no 270 MB copy.
  cp -al /usr/local/go "$root/usr/local/go" 2>/dev/null || cp -a /usr/local/go "$root/usr/local/go"
  cp -L /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
    >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
}

# --- gcr.io/distroless/static-debian12: CA bundle, /tmp, and the users of
# distroless (root, nobody, nonroot 65532).
inputs_distroless() {
  stamp "$CA_BUNDLE"
}
fill_distroless() {
  local root=$1
  base_dirs "$root"
  mkdir -p "$root/root" "$root/home/nonroot"
  chmod 700 "$root/root" "$root/home/nonroot"
  chown 65532:65532 "$root/home/nonroot"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$root/etc/group"
  printf '%s\n' 'PRETTY_NAME="Distroless"' 'NAME="Debian GNU/Linux"' 'ID="debian"' 'VERSION_ID="12"' \
    'VERSION="Debian GNU/Linux 12 (bookworm)"' 'HOME_URL="https://github.com/GoogleContainerTools/distroless"' \
    >"$root/etc/os-release"
  echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
}

# --- docker/buildx-bin: just /buildx, as the real image.
inputs_buildx() {
  stamp "$PHIALO_BIN/buildx"
}
fill_buildx() {
  cp -L "$PHIALO_BIN/buildx" "$1/buildx"
}

# --- aquasec/trivy: /usr/local/bin/trivy.
inputs_trivy() {
  stamp "$PHIALO_BIN/trivy" "$CA_BUNDLE"
}
fill_trivy() {
  local root=$1
  base_dirs "$root"
  mkdir -p "$root/usr/local/bin"
  cp -L "$PHIALO_BIN/trivy" "$root/usr/local/bin/trivy"
}

# --- registry:2: Debian's distribution registry 2.8 (dynamic, with its
# libraries) and a config like the real image's: :5000, filesystem storage,
# deletes allowed. A test mounts its own config over it to add TLS.
inputs_registry() {
  stamp /usr/bin/docker-registry "$CA_BUNDLE"
  # shellcheck disable=SC2046 # one argument per library path
  stamp $(libs_of /usr/bin/docker-registry)
}
fill_registry() {
  local root=$1
  base_dirs "$root"
  copy_bin "$root" /usr/bin/docker-registry /bin/registry
  mkdir -p "$root/etc/docker/registry" "$root/var/lib/registry"
  cat >"$root/etc/docker/registry/config.yml" <<'YAML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
YAML
}

# stand_in NAME KIND CHANGE...: make image NAME from fill_KIND unless an
# image of that name carries the label of the same inputs. CHANGEs are
# Dockerfile instructions for `docker import --change`.
stand_in() {
  local name=$1 kind=$2 start hash have old root c
  shift 2
  local changes=("$@") args=()
  start=$(now)
  hash=$({
    printf '%s\n' "$name" "${changes[@]}"
    declare -f "inputs_$kind" "fill_$kind" copy_bin libs_of base_dirs
    "inputs_$kind"
  } | sha256sum | cut -c1-32)
  read -r old have <<<"${present[$name]:-}"
  if [[ $have == "$hash" ]]; then
    echo "$name: cached ($(since "$start")s)"
    return 0
  fi
  log "$name: building"
  root=$(mktemp -d "$tmp/root.XXXXXX")
  chmod 755 "$root"
  "fill_$kind" "$root"
  for c in "${changes[@]}" "LABEL $LABEL=$hash"; do
    args+=(--change "$c")
  done
  tar --numeric-owner -C "$root" -c . | docker import "${args[@]}" - "$name" >/dev/null
  rm -rf "$root"
  # The image this one replaces would stay behind untagged; a container
  # still using it keeps it.
  [[ -z $old ]] || docker image rm "$old" >/dev/null 2>&1 || true
  echo "$name: built ($(since "$start")s)"
}

# NAME -> "ID LABEL" of the stand-ins the daemon has, in one call: a call
# per image would be most of the time of a cached run. Names it lacks only
# give errors on stderr.
NAMES=(moby/buildkit:buildx-stable-1 tonistiigi/binfmt:qemu-v10.2.3-68 "golang:$GO_VERSION-bookworm"
  gcr.io/distroless/static-debian12:latest docker/buildx-bin:0.38.2 aquasec/trivy:0.74.0 registry:2)
docker version >/dev/null || die "no Docker daemon answers at $DOCKER_HOST"
declare -A present=()
while read -r id label tags; do
  for tag in $tags; do
    present[$tag]="$id $label"
  done
done < <(docker image inspect -f "{{.Id}} {{or (index .Config.Labels \"$LABEL\") \"-\"}}{{range .RepoTags}} {{.}}{{end}}" \
  "${NAMES[@]}" 2>/dev/null || true)

stand_in "${NAMES[0]}" buildkit \
  "ENV PATH=$STD_PATH" 'VOLUME /var/lib/buildkit' 'ENTRYPOINT ["buildkitd"]'
stand_in "${NAMES[1]}" binfmt \
  'ENV QEMU_PRESERVE_ARGV0=1' 'VOLUME /tmp' 'ENTRYPOINT ["/usr/bin/binfmt"]'
stand_in "${NAMES[2]}" golang \
  "ENV PATH=/go/bin:/usr/local/go/bin:$STD_PATH" "ENV GOLANG_VERSION=$GO_VERSION" \
  'ENV GOTOOLCHAIN=local' 'ENV GOPATH=/go' 'WORKDIR /go' 'CMD ["sh"]'
stand_in "${NAMES[3]}" distroless \
  "ENV PATH=$STD_PATH" "ENV SSL_CERT_FILE=$CA_BUNDLE"
stand_in "${NAMES[4]}" buildx
if [[ -e $PHIALO_BIN/trivy ]]; then
  stand_in "${NAMES[5]}" trivy "ENV PATH=$STD_PATH" 'ENTRYPOINT ["trivy"]'
else
  log "warning: no $PHIALO_BIN/trivy (hack/e2e/install.sh trivy): no aquasec/trivy:0.74.0 image"
  echo "aquasec/trivy:0.74.0: skipped, trivy not installed"
fi
stand_in "${NAMES[6]}" registry \
  "ENV PATH=$STD_PATH" 'VOLUME /var/lib/registry' 'EXPOSE 5000' \
  'ENTRYPOINT ["/bin/registry", "serve", "/etc/docker/registry/config.yml"]'
