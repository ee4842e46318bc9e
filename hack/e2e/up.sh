#!/usr/bin/env bash
# Starts a buildkitd, a local registry and a Docker daemon for the
# end-to-end tests.
#
#   hack/e2e/up.sh STATE_DIR
#
# Everything they keep lives in STATE_DIR: buildkitd's root and socket, the
# registry's storage and config, logs (*.log), and STATE_DIR/env with
# BUILDKIT_HOST, PHIALO_REGISTRY, BUILDKITD_PID and REGISTRY_PID (KEY=value
# lines, fine to `source`). Stop them with hack/e2e/down.sh STATE_DIR.
# Needs root (runc, overlayfs, binfmt_misc) and hack/e2e/install.sh first.
#
# The Docker daemon (Debian's dockerd, from `hack/e2e/install.sh docker`)
# starts when dockerd is installed; PHIALO_E2E_DOCKER=0 leaves it out, =1
# fails without it. It listens on STATE_DIR/docker.sock only, runs containers
# through hack/e2e/runcshim, on a bridge of its own, and gets stand-ins for
# the images the Dockerfile and the action use (hack/e2e/images.sh). The env
# file then also has DOCKER_HOST and DOCKERD_PID (and DOCKER_BRIDGE,
# DOCKER_EXEC_ROOT for down.sh). Its data root is $PHIALO_CACHE/docker, kept
# between runs (stand-in images, BuildKit's cache of the Dockerfile's Go
# build); a run that finds it in use by another one takes STATE_DIR/docker.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
# shellcheck source=SCRIPTDIR/env.sh
. "$here/env.sh"

BUILDKITD_TIMEOUT=${BUILDKITD_TIMEOUT:-60}
REGISTRY_TIMEOUT=${REGISTRY_TIMEOUT:-20}
DOCKERD_TIMEOUT=${DOCKERD_TIMEOUT:-60}
PHIALO_E2E_DOCKER=${PHIALO_E2E_DOCKER:-auto}

(($# == 1)) || { log "usage: $0 STATE_DIR"; exit 2; }
mkdir -p "$1"
state=$(cd "$1" && pwd -P)
# The paths end up in a unix:// URL and in KEY=value lines read by tests.
[[ $state != *[[:space:]:]* ]] || die "STATE_DIR must not contain spaces or colons: $state"
sock=$state/buildkitd.sock
# sun_path holds 108 bytes; a longer path fails later with an obscure error.
((${#sock} < 100)) || die "STATE_DIR path too long for a unix socket: $sock"

for b in buildkitd buildctl docker-registry runc curl; do
  command -v "$b" >/dev/null || die "$b not found: run hack/e2e/install.sh first"
done
case $PHIALO_E2E_DOCKER in
  0) with_docker=0 ;;
  1 | auto)
    with_docker=1
    for b in dockerd containerd docker go ip iptables; do
      command -v "$b" >/dev/null && continue
      [[ $PHIALO_E2E_DOCKER == 1 || $b != dockerd ]] ||
        { log "dockerd not installed (hack/e2e/install.sh docker): no Docker daemon"; with_docker=0; break; }
      die "$b not found, needed for the Docker daemon: run hack/e2e/install.sh docker (or PHIALO_E2E_DOCKER=0)"
    done
    ;;
  *) die "PHIALO_E2E_DOCKER must be 0, 1 or auto, not $PHIALO_E2E_DOCKER" ;;
esac

if [[ -f $state/env ]]; then
  die "$state/env exists: already up? run hack/e2e/down.sh $state first"
fi

buildkitd_pid=
registry_pid=
dockerd_pid=
docker_bridge=
docker_exec_root=
ok=0
on_exit() {
  ((ok)) && return
  local f
  for f in "$state"/*.log; do
    [[ -f $f ]] || continue
    log "--- last lines of $f"
    tail -n 40 "$f" >&2 || true
  done
  # images.sh starts no containers: stopping dockerd is enough.
  [[ -z $dockerd_pid ]] || stop_pid "$dockerd_pid" 30 || true
  [[ -z $docker_bridge ]] || remove_bridge "$docker_bridge" || true
  [[ -z $buildkitd_pid ]] || stop_pid "$buildkitd_pid" 10 || true
  [[ -z $registry_pid ]] || stop_pid "$registry_pid" 10 || true
  if [[ -n $docker_exec_root && $docker_exec_root != "$state/"* ]]; then
    unmount_under "$docker_exec_root" || true
    rm -rf "$docker_exec_root" || true
  fi
  rm -f "$state/env" "$state/env.tmp"
}
trap on_exit EXIT
# Without these an interrupt would skip the EXIT trap's cleanup in some shells.
trap 'exit 130' INT
trap 'exit 143' TERM

# binfmt_misc lets runc run linux/arm64 RUN steps under qemu-user-static. It
# is not mounted on these machines, and with no init running binfmt-support,
# the qemu handlers are not registered either. A buildkitd started later (or
# already running) picks them up. Not fatal: builds without foreign RUN steps
# work without it.
setup_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc
  if ! mountpoint -q "$dir"; then
    mount -t binfmt_misc binfmt_misc "$dir" ||
      { log "warning: cannot mount $dir; non-native RUN steps will fail"; return 0; }
  fi
  # arm64 and arm get the F (fix binary) flag, as tonistiigi/binfmt gives them
  # on a runner: the kernel opens the emulator once, at registration, and uses
  # that file in every mount namespace. Without F it looks the interpreter up
  # at each exec inside the container's root, which has no qemu, so arm64
  # binaries would run on the host but not in Docker containers or in the
  # BuildKit of buildx's docker-container driver.
  local name
  for name in qemu-aarch64 qemu-arm; do
    register_fixed "$dir" "$name"
  done
  # riscv64 stays unregistered: the tests build linux/riscv64 to see the
  # action install QEMU itself through the daemon (docker run --privileged
  # tonistiigi/binfmt --install riscv64), which it does only for a platform
  # the builder lacks. A registration from an earlier run is removed.
  if [[ -e $dir/qemu-riscv64 ]]; then
    echo -1 >"$dir/qemu-riscv64" || log "warning: cannot unregister qemu-riscv64"
  fi
  # The other emulators the package ships (mips, s390x, ...) as before, for
  # the host's buildkitd, but not other formats (jar, python) that
  # binfmt-support knows too.
  local f
  for f in /usr/share/binfmts/qemu-*; do
    [[ -e $f ]] || continue
    name=${f##*/}
    case $name in qemu-aarch64 | qemu-arm | qemu-riscv64) continue ;; esac
    if [[ -e $dir/$name ]]; then
      # Registered but switched off (echo 0 > it) would fail just the same.
      [[ $(head -n 1 "$dir/$name") == enabled ]] || echo 1 >"$dir/$name" ||
        log "warning: cannot enable $name"
      continue
    fi
    update-binfmts --enable "$name" >&2 ||
      log "warning: cannot register $name; RUN steps for its platform will fail"
  done
  [[ -e $dir/qemu-aarch64 ]] ||
    log "warning: no qemu-aarch64 handler; linux/arm64 RUN steps will fail"
}

# register_fixed DIR NAME: register NAME (qemu-aarch64, qemu-arm) with the F
# flag, from the magic and mask of Debian's /usr/share/binfmts/NAME and its
# static emulator. An enabled registration that has F already is kept (it
# may be tonistiigi/binfmt's); one without F is replaced.
register_fixed() {
  local dir=$1 name=$2 spec key value magic='' mask='' offset=0 flags=F interp
  spec=/usr/share/binfmts/$name
  interp=/usr/bin/$name-static
  if [[ ! -f $spec || ! -x $interp ]]; then
    log "warning: no $spec or $interp; cannot register $name"
    return 0
  fi
  if [[ -e $dir/$name ]]; then
    if [[ $(head -n 1 "$dir/$name") == enabled ]] && grep -q '^flags: .*F' "$dir/$name"; then
      return 0
    fi
    echo -1 >"$dir/$name" || { log "warning: cannot unregister $name"; return 0; }
  fi
  while read -r key value; do
    case $key in
      magic) magic=$value ;;
      mask) mask=$value ;;
      offset) offset=$value ;;
      preserve) [[ $value != yes ]] || flags+=P ;;
      credentials) [[ $value != yes ]] || flags+=C ;;
    esac
  done <"$spec"
  [[ -n $magic ]] || { log "warning: no magic in $spec; cannot register $name"; return 0; }
  # The \xHH escapes go to the kernel as written: it decodes them.
  printf ':%s:M:%s:%s:%s:%s:%s' "$name" "$offset" "$magic" "$mask" "$interp" "$flags" \
    >"$dir/register" || log "warning: cannot register $name"
}

# port_in_use PORT: any TCP socket (v4 or v6) bound to PORT locally.
port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == p { found = 1 }
    END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# start_registry: pick a random free port below the ephemeral range, start
# the registry on it and wait for /v2/. Another process can still grab the
# port between check and bind, so a registry that dies is retried elsewhere.
start_registry() {
  local attempt port i
  mkdir -p "$state/registry"
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 12000))
    port_in_use "$port" && continue
    # Debian's packaged config wants htpasswd and :5000; use our own.
    cat >"$state/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $state/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: phialo-e2e-not-secret
YAML
    log "registry: starting on 127.0.0.1:$port (attempt $attempt)"
    docker-registry serve "$state/registry.yml" </dev/null >>"$state/registry.log" 2>&1 &
    registry_pid=$!
    for ((i = 0; i < REGISTRY_TIMEOUT * 10; i++)); do
      if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/v2/" 2>/dev/null; then
        registry_port=$port
        return 0
      fi
      pid_alive "$registry_pid" || break
      sleep 0.1
    done
    stop_pid "$registry_pid" 5 || true
    registry_pid=
  done
  die "registry did not come up"
}

# start_buildkitd: a plain `cmd &` so that $! is buildkitd itself; through a
# subshell (`cd X && buildkitd &`) $! would be the subshell, and stopping it
# would leave buildkitd holding its lock.
start_buildkitd() {
  local i
  mkdir -p "$state/buildkit"
  # An empty config of our own, so a stray /etc/buildkit/buildkitd.toml on the
  # machine cannot change the tests.
  : >"$state/buildkitd.toml"
  log "buildkitd: starting on unix://$sock"
  buildkitd \
    --config "$state/buildkitd.toml" \
    --root "$state/buildkit" \
    --addr "unix://$sock" \
    --otel-socket-path "$state/otel-grpc.sock" \
    --oci-worker-snapshotter=overlayfs \
    </dev/null >"$state/buildkitd.log" 2>&1 &
  buildkitd_pid=$!
  for ((i = 0; i < BUILDKITD_TIMEOUT * 10; i++)); do
    pid_alive "$buildkitd_pid" || die "buildkitd exited"
    if [[ -S $sock ]] && buildctl --addr "unix://$sock" debug workers >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  die "buildkitd did not answer within ${BUILDKITD_TIMEOUT}s"
}

# setup_bridge: each dockerd gets a bridge of its own instead of docker0, so
# that two runs at once never hand out the same container addresses. The
# name derives from STATE_DIR; the subnet is a free 10.213.N.0/24.
setup_bridge() {
  local name used n attempt
  name=phe$(printf '%s' "$state" | sha256sum | cut -c1-8)
  # Left by a run with this STATE_DIR that was killed hard.
  if ip link show "$name" >/dev/null 2>&1; then
    remove_bridge "$name"
  fi
  used=$(ip -4 -o addr show; ip -4 route show)
  for attempt in $(seq 1 50); do
    n=$((RANDOM % 254 + 1))
    [[ $used != *" 10.213.$n."* ]] || continue
    ip link add name "$name" type bridge
    docker_bridge=$name
    ip addr add "10.213.$n.1/24" dev "$name"
    ip link set "$name" up
    return 0
  done
  die "no free 10.213.N.0/24 subnet for the Docker bridge after $attempt tries"
}

# start_dockerd: Debian's dockerd with everything of its own (data root,
# exec root, pidfile, socket, an empty config so /etc/docker/daemon.json is
# never read) and the runc shim as its default runtime.
start_dockerd() {
  local i data_root
  docker_sock=$state/docker.sock
  ((${#docker_sock} < 100)) || die "STATE_DIR path too long for a unix socket: $docker_sock"
  # containerd puts unix sockets under the exec root (exec-root/containerd/
  # containerd.sock.ttrpc, 108 bytes at most): a long STATE_DIR gets a short
  # exec root in /run instead.
  docker_exec_root=$state/run
  if ((${#docker_exec_root} > 60)); then
    docker_exec_root=$(mktemp -d /run/phialo-e2e.XXXXXX)
  fi
  mkdir -p "$docker_exec_root" "$state/bin"

  (cd "$here/../.." && env GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$state/bin/phialo-runc" ./hack/e2e/runcshim) ||
    die "cannot build hack/e2e/runcshim"
  echo '{}' >"$state/dockerd.json"
  setup_bridge

  # The data root is kept in the cache, locked for as long as this dockerd
  # runs: fd 8 holds the lock and dockerd inherits it (then its containerd).
  # A second run at the same time gets a fresh one in STATE_DIR.
  mkdir -p "$PHIALO_CACHE"
  exec 8>"$PHIALO_CACHE/docker.lock"
  if flock -n 8; then
    data_root=$PHIALO_CACHE/docker
  else
    exec 8>&-
    data_root=$state/docker
    log "dockerd: $PHIALO_CACHE/docker is in use by another run; using $data_root (stand-in images and build cache start cold)"
  fi
  docker_data_root=$data_root
  mkdir -p "$data_root"

  log "dockerd: starting on unix://$docker_sock, data root $data_root"
  dockerd \
    --config-file "$state/dockerd.json" \
    --data-root "$data_root" \
    --exec-root "$docker_exec_root" \
    --pidfile "$state/dockerd.pid" \
    -H "unix://$docker_sock" \
    --storage-driver overlay2 \
    --bridge "$docker_bridge" \
    --add-runtime "phialo-e2e=$state/bin/phialo-runc" \
    --default-runtime phialo-e2e \
    </dev/null >"$state/dockerd.log" 2>&1 &
  dockerd_pid=$!
  exec 8>&-
  for ((i = 0; i < DOCKERD_TIMEOUT * 10; i++)); do
    pid_alive "$dockerd_pid" || die "dockerd exited"
    if [[ -S $docker_sock ]] && docker -H "unix://$docker_sock" version >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  die "dockerd did not answer within ${DOCKERD_TIMEOUT}s"
}

setup_binfmt

start=$(now)
start_registry
registry_time=$(since "$start")

start=$(now)
start_buildkitd
buildkitd_time=$(since "$start")

if ((with_docker)); then
  start=$(now)
  start_dockerd
  dockerd_time=$(since "$start")
  echo "dockerd: unix://$docker_sock pid $dockerd_pid data root $docker_data_root (${dockerd_time}s)"
  DOCKER_HOST=unix://$docker_sock "$here/images.sh"
fi

# Written last and renamed into place, so an env file always means "up".
cat >"$state/env.tmp" <<ENV
BUILDKIT_HOST=unix://$sock
PHIALO_REGISTRY=127.0.0.1:$registry_port
BUILDKITD_PID=$buildkitd_pid
REGISTRY_PID=$registry_pid
ENV
if ((with_docker)); then
  cat >>"$state/env.tmp" <<ENV
DOCKER_HOST=unix://$docker_sock
DOCKERD_PID=$dockerd_pid
DOCKER_BRIDGE=$docker_bridge
DOCKER_EXEC_ROOT=$docker_exec_root
ENV
fi
mv "$state/env.tmp" "$state/env"
ok=1
echo "registry: 127.0.0.1:$registry_port pid $registry_pid (${registry_time}s)"
echo "buildkitd: unix://$sock pid $buildkitd_pid (${buildkitd_time}s)"
