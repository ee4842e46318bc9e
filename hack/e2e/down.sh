#!/usr/bin/env bash
# Stops what hack/e2e/up.sh STATE_DIR started, by the PIDs in STATE_DIR/env
# (never by process name, so other buildkitds and registries are left alone).
#
#   hack/e2e/down.sh STATE_DIR
#
# Tolerates processes that are already gone and a missing env file. Touches
# nothing outside STATE_DIR; leaves STATE_DIR's contents for the caller to
# inspect or remove (only the env file goes, as it means "up").
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
while IFS='=' read -r key value; do
  case $key in
    BUILDKITD_PID) buildkitd_pid=$value ;;
    REGISTRY_PID) registry_pid=$value ;;
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
# buildkitd first: it may still be pushing to the registry.
stop buildkitd "$buildkitd_pid"
stop registry "$registry_pid"

# A buildkitd that had to be killed can leave overlay mounts in its root;
# unmount them (deepest first) so STATE_DIR can be removed.
mapfile -t mounts < <(awk -v s="$state/" 'substr($5, 1, length(s)) == s { print $5 }' \
  /proc/self/mountinfo | sort -r)
for m in "${mounts[@]}"; do
  umount "$m" 2>/dev/null || umount -l "$m" || rc=1
done

((rc)) || rm -f "$state/env"
exit "$rc"
