#!/usr/bin/env bash
# Stops what hack/e2e/up.sh STATE_DIR started, by the PIDs in STATE_DIR/env
# (never by process name, so other buildkitds, registries and dockerds are
# left alone).
#
#   hack/e2e/down.sh STATE_DIR
#
# Tolerates processes that are already gone and a missing env file. Leaves
# STATE_DIR's contents for the caller to inspect or remove (only the env file
# goes, as it means "up"). Outside STATE_DIR it touches only what up.sh made
# for this run: the Docker daemon's containers, networks and volumes (the
# daemon is this run's alone; its images and build cache stay), its bridge
# and that bridge's iptables rules, and an exec root in /run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

(($# == 1)) || { log "usage: $0 STATE_DIR"; exit 2; }
[[ -d $1 ]] || { log "down: no directory $1, nothing to stop"; exit 0; }
state=$(cd "$1" && pwd -P)
if [[ ! -f $state/env ]]; then
  log "down: no $state/env, nothing to stop"
  exit 0
fi

# Parse rather than source: the file is data, not code.
buildkitd_pid=''
registry_pid=''
dockerd_pid=''
docker_host=''
docker_bridge=''
docker_exec_root=''
while IFS='=' read -r key value; do
  case $key in
    BUILDKITD_PID) buildkitd_pid=$value ;;
    REGISTRY_PID) registry_pid=$value ;;
    DOCKERD_PID) dockerd_pid=$value ;;
    DOCKER_HOST) docker_host=$value ;;
    DOCKER_BRIDGE) docker_bridge=$value ;;
    DOCKER_EXEC_ROOT) docker_exec_root=$value ;;
  esac
done <"$state/env"

rc=0
# stop NAME PID: both daemons were started with paths in STATE_DIR on their
# command line; a live PID without it is a recycled one and not ours.
stop() {
  local name=$1 pid=$2
  [[ $pid =~ ^[0-9]+$ ]] || { log "down: $name: no pid in env"; return 0; }
  if ! pid_alive "$pid"; then
    log "down: $name (pid $pid) already gone"
  elif ! pid_mentions "$pid" "$state/"; then
    log "down: pid $pid is no longer $name from $state; leaving it alone"
  elif stop_pid "$pid" 15; then
    log "down: $name (pid $pid) stopped"
  else
    rc=1
  fi
}
# clear_docker: remove what tests left on our daemon: containers (running
# or not, with their anonymous volumes), then unused networks and volumes,
# so a data root kept in the cache starts the next run clean. Images and
# the build cache stay.
clear_docker() {
  local ids
  export DOCKER_HOST=$docker_host
  # A private, empty client config: the user's ~/.docker stays untouched.
  DOCKER_CONFIG=$(mktemp -d /tmp/phialo-down.XXXXXX)
  export DOCKER_CONFIG
  if ids=$(timeout 30 docker ps -aq); then
    if [[ -n $ids ]]; then
      # shellcheck disable=SC2086 # one argument per container ID
      timeout 120 docker rm -f -v $ids >/dev/null || rc=1
      log "down: removed $(wc -w <<<"$ids") container(s)"
    fi
    timeout 60 docker network prune -f >/dev/null || rc=1
    timeout 60 docker volume prune -f >/dev/null || rc=1
  else
    log "down: dockerd (pid $dockerd_pid) does not answer; stopping it with its containers"
    rc=1
  fi
  rm -rf "$DOCKER_CONFIG"
}

# The Docker daemon first: its containers (a builder, a registry) may use
# the others. Stopping it stops its containerd too.
if [[ -n $dockerd_pid ]]; then
  if [[ $dockerd_pid =~ ^[0-9]+$ ]] && pid_alive "$dockerd_pid" && pid_mentions "$dockerd_pid" "$state/"; then
    clear_docker
  fi
  containerd_pid=$(cat "$docker_exec_root/containerd/containerd.pid" 2>/dev/null || true)
  stop dockerd "$dockerd_pid"
  # A dockerd that had to be killed leaves its containerd running.
  if [[ $containerd_pid =~ ^[0-9]+$ ]] && pid_alive "$containerd_pid" &&
    pid_mentions "$containerd_pid" "$docker_exec_root/"; then
    stop containerd "$containerd_pid"
  fi
fi
if [[ -n $docker_bridge ]]; then
  remove_bridge "$docker_bridge" || { log "down: cannot remove bridge $docker_bridge"; rc=1; }
fi

# buildkitd first: it may still be pushing to the registry.
stop buildkitd "$buildkitd_pid"
stop registry "$registry_pid"

# A daemon that had to be killed can leave overlay and netns mounts in its
# root; unmount them (deepest first) so STATE_DIR can be removed.
unmount_under "$state" || rc=1
if [[ -n $docker_exec_root && $docker_exec_root != "$state/"* && -d $docker_exec_root ]]; then
  unmount_under "$docker_exec_root" || rc=1
  rm -rf "$docker_exec_root" || rc=1
fi

((rc)) || rm -f "$state/env"
exit "$rc"
