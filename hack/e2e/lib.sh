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
