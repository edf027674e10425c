#!/usr/bin/env bash
# bench-scale: one transaction of N changed rows (about 110 bytes each) from a hub to
# a remote over the file link, each side a real `sqlpost run --once` process under
# /usr/bin/time: seconds, rows/s and peak memory (max RSS) of the sender (prepare +
# send) and of the receiver (receive + apply). The first N is the baseline, measured
# in the same run; each later N prints its throughput relative to it.
# Goals (issue 11): peak memory <= 128 MB at each end whatever N; throughput at 5M
# rows within 20 % of 100k rows.
# With --blobs COUNT MB, the one transaction inserts COUNT rows each holding a BLOB of
# MB megabytes instead (goal: peak memory <= 128 MB + a small multiple of one value),
# and the content is compared byte for byte at the remote.
# Usage: tools/bench-scale.sh [N...]      (default: 100000 1000000; needs a built sqlpost)
#        tools/bench-scale.sh --blobs 60 10
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SQLPOST_BUILD_DIR:-$root/build}"
sqlpost="$build/agent/sqlpost"
[ -x "$sqlpost" ] || { echo "bench-scale: build sqlpost first (cmake --build build)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-scale: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
blob_mb=""
if [ "${1:-}" = "--blobs" ]; then
  [ $# -eq 3 ] || { echo "usage: bench-scale.sh --blobs COUNT MB" >&2; exit 2; }
  blob_mb="$3"
  set -- "$2"
fi
[ $# -gt 0 ] || set -- 100000 1000000
work="$(mktemp -d /tmp/sqlpost-bench-scale.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# measure LOG CMD...: runs CMD under /usr/bin/time; prints "seconds peak_mb exit_code".
measure() {
  local log="$1" rc=0
  shift
  /usr/bin/time -f '%e %M' -o "$log.time" "$@" >>"$log" 2>&1 || rc=$?
  read -r seconds kb < <(tail -n 1 "$log.time")  # GNU time may add an exit-status line first
  echo "$seconds $((kb / 1024)) $rc"
}

# one N: prints "N send_s send_mb send_rc recv_s recv_mb recv_rc rows_at_remote"
one() {
  local n="$1" dir="$work/n$1"
  mkdir -p "$dir"
  sqlite3 "$dir/hq.db" "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER,
    price REAL, note TEXT${blob_mb:+, data BLOB})"
  "$sqlpost" init "$dir/hq.db" --site hq --address hq@hq.test >/dev/null
  "$sqlpost" config "$dir/hq.db" link=file file.dir="$dir/mail" >/dev/null
  "$sqlpost" publish "$dir/hq.db" p item >/dev/null
  "$sqlpost" site add "$dir/hq.db" site1 --address site1@site1.test >/dev/null
  "$sqlpost" subscribe "$dir/hq.db" site1 p >/dev/null
  "$sqlpost" extract "$dir/hq.db" site1 --output "$dir/site1.db" >/dev/null
  if [ -n "$blob_mb" ]; then
    sqlite3 "$dir/hq.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
      WHERE i < $n) INSERT INTO item SELECT i, 'blob ' || i, i, 0, '',
      randomblob($blob_mb * 1048576) FROM n"
  else
    sqlite3 "$dir/hq.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
      WHERE i < $n) INSERT INTO item SELECT i, 'name ' || i, i % 100, i * 0.25,
      'a note of some forty bytes, row ' || i FROM n"
  fi
  local sent received rows
  sent=$(measure "$dir/send.log" "$sqlpost" run "$dir/hq.db" --once --send-only)
  received=$(measure "$dir/recv.log" "$sqlpost" run "$dir/site1.db" --once)
  rows=$(sqlite3 "$dir/site1.db" "SELECT count(*) FROM item")
  if [ -n "$blob_mb" ]; then  # the same bytes: count only rows whose content matches
    rows=$(sqlite3 "$dir/site1.db" "ATTACH '$dir/hq.db' AS hq; SELECT count(*) FROM item r
      JOIN hq.item h USING (id) WHERE r.data = h.data")
  fi
  echo "$n $sent $received $rows"
  if [ "$rows" = "$n" ]; then rm -rf "$dir"; else cp "$dir"/*.log "$work/.." 2>/dev/null || true; fi
}

printf '%-9s %9s %9s %8s %9s %9s %8s %12s %s\n' rows send_s send_MB send_rc recv_s recv_MB \
  recv_rc rows/s "vs first"
base_rate=""
for n in "$@"; do
  read -r rows send_s send_mb send_rc recv_s recv_mb recv_rc arrived <<<"$(one "$n")"
  rate=$(awk -v r="$arrived" -v a="$send_s" -v b="$recv_s" 'BEGIN { printf "%.1f", r / (a + b) }')
  [ -n "$base_rate" ] || base_rate="$rate"
  ratio=$(awk -v r="$rate" -v b="$base_rate" 'BEGIN { printf "%.2fx", r / b }')
  printf '%-9s %9s %9s %8s %9s %9s %8s %12s %s\n' "$rows" "$send_s" "$send_mb" "$send_rc" \
    "$recv_s" "$recv_mb" "$recv_rc" "$rate" "$ratio"
  [ "$arrived" = "$rows" ] ||
    echo "  only $arrived of $rows rows arrived (exit codes above; logs: /tmp/send.log, /tmp/recv.log)"
done
