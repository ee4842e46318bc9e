# shellcheck shell=bash
# Helpers shared by the hack/e2e scripts. Sourced, never run.

# log MSG...: progress for humans goes to stderr, so stdout stays for status lines.
log() { printf '%s\n' "$*" >&2; }

die() { log "error: $*"; exit 1; }

# now: seconds since the epoch with milliseconds, for timings.
now() { date +%s.%3N; }

# since START: seconds elapsed since START (from now), one decimal.
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# pid_alive PID: true while PID runs. A zombie counts as dead: PID 1 on these
# machines does not always reap orphans, so kill -0 alone would wait forever.
pid_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # Field 3 (state) follows the last ')' of the command name.
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# pid_mentions PID TEXT: true if PID's command line contains TEXT. Guards
# against signalling a recycled PID that is no longer the process we started.
pid_mentions() {
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$2"* ]]
}

# stop_pid PID [GRACE_SECONDS]: TERM, wait up to GRACE seconds, then KILL.
# Tolerates a PID that is already gone.
stop_pid() {
  local pid=$1 grace=${2:-15} i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid ignored TERM for ${grace}s, sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid still alive after KILL"
  return 1
}

# unmount_under DIR: unmount every mount below DIR, deepest first (a daemon
# that had to be killed can leave overlay and netns mounts behind).
# Returns 1 if one stays mounted.
unmount_under() {
  local m rc=0
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || rc=1
  done < <(awk -v s="${1%/}/" 'substr($5, 1, length(s)) == s { print $5 }' /proc/self/mountinfo | sort -r)
  return "$rc"
}

# remove_bridge NAME: delete a bridge that hack/e2e/up.sh made for a dockerd,
# and the iptables rules that name it or its subnet: dockerd keeps the rules
# of its default bridge when it stops.
remove_bridge() {
  local name=$1 subnet='' table rule
  subnet=$(ip -4 -o addr show dev "$name" 2>/dev/null | awk '{ print $4; exit }')
  if [[ -n $subnet ]]; then
    # 10.213.7.1/24 -> 10.213.7.0/24, as the rules write it.
    subnet=${subnet%.*/*}.0/${subnet#*/}
  fi
  for table in nat filter; do
    iptables -t "$table" -S 2>/dev/null |
      awk -v n="$name" -v s="${subnet:-none}" '$1 == "-A" {
        for (i = 2; i <= NF; i++) if ($i == n || $i == s) { print; next }
      }' |
      while read -r -a rule; do
        rule[0]=-D
        iptables -t "$table" "${rule[@]}" 2>/dev/null || true
      done
  done
  if ip link show "$name" >/dev/null 2>&1; then
    ip link delete "$name" || return 1
  fi
}
