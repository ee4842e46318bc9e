#!/usr/bin/env bash
# Starts a buildkitd and a local registry for the end-to-end tests.
#
#   hack/e2e/up.sh STATE_DIR
#
# Everything they keep lives in STATE_DIR: buildkitd's root and socket, the
# registry's storage and config, logs (*.log), and STATE_DIR/env with
# BUILDKIT_HOST, PHIALO_REGISTRY, BUILDKITD_PID and REGISTRY_PID (KEY=value
# lines, fine to `source`). Stop them with hack/e2e/down.sh STATE_DIR.
# Needs root (runc, overlayfs, binfmt_misc) and hack/e2e/install.sh first.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
# shellcheck source=SCRIPTDIR/env.sh
. "$here/env.sh"

BUILDKITD_TIMEOUT=${BUILDKITD_TIMEOUT:-60}
REGISTRY_TIMEOUT=${REGISTRY_TIMEOUT:-20}

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

if [[ -f $state/env ]]; then
  die "$state/env exists: already up? run hack/e2e/down.sh $state first"
fi

buildkitd_pid=
registry_pid=
ok=0
on_exit() {
  ((ok)) && return
  local f
  for f in "$state"/*.log; do
    [[ -f $f ]] || continue
    log "--- last lines of $f"
    tail -n 40 "$f" >&2 || true
  done
  [[ -z $buildkitd_pid ]] || stop_pid "$buildkitd_pid" 10 || true
  [[ -z $registry_pid ]] || stop_pid "$registry_pid" 10 || true
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
  # Register every qemu handler the package ships (arm64, arm, riscv64, ...),
  # not other formats such as jar or python that binfmt-support knows too.
  local f name
  for f in /usr/share/binfmts/qemu-*; do
    [[ -e $f ]] || continue
    name=${f##*/}
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

setup_binfmt

start=$(now)
start_registry
registry_time=$(since "$start")

start=$(now)
start_buildkitd
buildkitd_time=$(since "$start")

# Written last and renamed into place, so an env file always means "up".
cat >"$state/env.tmp" <<ENV
BUILDKIT_HOST=unix://$sock
PHIALO_REGISTRY=127.0.0.1:$registry_port
BUILDKITD_PID=$buildkitd_pid
REGISTRY_PID=$registry_pid
ENV
mv "$state/env.tmp" "$state/env"
ok=1
echo "registry: 127.0.0.1:$registry_port pid $registry_pid (${registry_time}s)"
echo "buildkitd: unix://$sock pid $buildkitd_pid (${buildkitd_time}s)"
