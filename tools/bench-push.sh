#!/usr/bin/env bash
# Push-delivery benchmark through the real Postfix + Dovecot of tools/mailstack: a hub
# and a remote (SMTP submission out, IMAP in, both with STARTTLS) each run
# `sqlpost run --every 60` in the background. N single-row transactions are committed
# at the hub, SPACING seconds apart; for each, the time from the commit to the row
# being applied at the remote is measured (the bench polls the remote database every
# 50 ms). Printed side by side with the baseline measured in the same run: the same
# with push=no and `--every 10` (plain polling, what one would run without push).
# Then the idle agents' CPU use over QUIET seconds (utime + stime from /proc/PID/stat).
# Usage: tools/bench-push.sh [N] [SPACING] [QUIET]     (defaults 10, 2, 30)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SQLPOST_BUILD_DIR:-$root/build}"
sqlpost="$build/agent/sqlpost"
n="${1:-10}" spacing="${2:-2}" quiet="${3:-30}"
[ -x "$sqlpost" ] || { echo "bench-push: build sqlpost first (cmake --build build)" >&2; exit 1; }
. "$root/tools/mailstack/ensure.sh"
. "$root/tools/push-sites.sh"
work="$(mktemp -d /tmp/sqlpost-bench-push.XXXXXX)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do push_stop "$pid"; done
  rm -rf "$work"
  mailstack_release
}
trap cleanup EXIT
now() { date +%s.%N; }

# cpu_ticks PID: utime + stime (clock ticks) of a running process.
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# run_mode NAME PUSH EVERY: latencies to $work/NAME.lat, idle CPU % of hub and remote
# to $work/NAME.cpu.
run_mode() {
  local dir="$work/$1" i t0 t1 row
  push_setup "$dir"
  "$sqlpost" config "$dir/hq.db" push="$2" >/dev/null
  "$sqlpost" config "$dir/site1.db" push="$2" >/dev/null
  "$sqlpost" run "$dir/site1.db" --once >/dev/null 2>&1 || true # leftovers of earlier runs
  "$sqlpost" run "$dir/hq.db" --once >/dev/null 2>&1 || true
  local ready="received .* part(s)"
  [ "$2" = no ] || ready="waiting for new mail with IMAP IDLE"
  push_start "$dir/site1.db" "$3" "$dir/site1.log" "$ready"
  local remote=$push_pid
  pids+=("$remote")
  push_start "$dir/hq.db" "$3" "$dir/hq.log" "$ready"
  local hub=$push_pid
  pids+=("$hub")
  : >"$work/$1.lat"
  for ((i = 1; i <= n; i++)); do
    row=$((1000 + i))
    t0="$(now)"
    push_sql "$dir/hq.db" "INSERT INTO item VALUES ($row, 'row $row')"
    until [ "$(push_sql "$dir/site1.db" "SELECT count(*) FROM item WHERE id = $row")" = 1 ]; do
      sleep 0.05
      awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 300) }' &&
        { echo "bench-push: row $row did not arrive in 300 s ($1)" >&2; exit 1; }
    done
    t1="$(now)"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$work/$1.lat"
    sleep "$spacing"
  done
  sleep 5 # acknowledgements settle
  local h0 r0 h1 r1
  h0="$(cpu_ticks "$hub")" r0="$(cpu_ticks "$remote")"
  sleep "$quiet"
  h1="$(cpu_ticks "$hub")" r1="$(cpu_ticks "$remote")"
  awk -v h="$((h1 - h0))" -v r="$((r1 - r0))" -v q="$quiet" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f %.2f\n", 100 * h / hz / q, 100 * r / hz / q }' >"$work/$1.cpu"
  push_stop "$hub"
  push_stop "$remote"
  pids=()
  diff <(push_sql "$dir/hq.db" "SELECT * FROM item ORDER BY id") \
    <(push_sql "$dir/site1.db" "SELECT * FROM item ORDER BY id") >/dev/null ||
    { echo "bench-push: the remote's rows differ from the hub's ($1)" >&2; exit 1; }
}

# stats FILE: median p90 max of the latencies.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    p = v[int(0.9 * NR + 0.999)]
    printf "%8.2f %8.2f %8.2f", m, p, v[NR] }'
}

run_mode push yes 60
run_mode poll no 10
printf "%-44s %8s %8s %8s   %s\n" "hub commit -> applied at remote, $n rows" median p90 max \
  "idle CPU % hub/remote (${quiet}s)"
printf "%-44s %s   %s\n" "push=yes, run --every 60 (IDLE + data_version)" \
  "$(stats "$work/push.lat")" "$(cat "$work/push.cpu")"
printf "%-44s %s   %s\n" "push=no,  run --every 10 (baseline: polling)" \
  "$(stats "$work/poll.lat")" "$(cat "$work/poll.cpu")"
