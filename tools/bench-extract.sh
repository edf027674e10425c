#!/usr/bin/env bash
# bench-extract: `sqlpost extract` of a hub holding N rows (about 110 bytes each, in
# two published tables, one with a --where subset and one with a --subscribe-by
# column) against `VACUUM INTO` of the same hub file, the baseline measured in the
# same run. Each is a real process under /usr/bin/time (seconds, peak memory); the
# best of REPEAT runs is printed. Goal (issue 11): extract <= 2x VACUUM INTO.
# Usage: tools/bench-extract.sh [N] [REPEAT]     (default 1000000 3; needs a built sqlpost)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SQLPOST_BUILD_DIR:-$root/build}"
sqlpost="${SQLPOST_BIN:-$build/agent/sqlpost}"
[ -x "$sqlpost" ] || { echo "bench-extract: build sqlpost first (cmake --build build)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-extract: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
n="${1:-1000000}"
repeat="${2:-3}"
work="$(mktemp -d /tmp/sqlpost-bench-extract.XXXXXX)"
trap 'rm -rf "$work"' EXIT
hub="$work/hq.db"

# timed CMD...: runs CMD under /usr/bin/time; prints "seconds peak_mb".
timed() {
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; exit 1; }
  read -r seconds kb < <(tail -n 1 "$work/time")
  echo "$seconds $((kb / 1024))"
}

sqlite3 "$hub" "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL,
  note TEXT); CREATE TABLE stock(id INTEGER PRIMARY KEY, region TEXT, item INTEGER, qty INTEGER,
  note TEXT); CREATE INDEX stock_region ON stock(region);"
"$sqlpost" init "$hub" --site hq --address hq@hq.test >/dev/null
"$sqlpost" publish "$hub" p item --where "qty < 90" >/dev/null
"$sqlpost" publish "$hub" p stock --subscribe-by region >/dev/null
"$sqlpost" site add "$hub" shop --address shop@shop.test >/dev/null
"$sqlpost" subscribe "$hub" shop p --value east >/dev/null
half=$((n / 2))
sqlite3 "$hub" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $half)
  INSERT INTO item SELECT i, 'name ' || i, i % 100, i * 0.25,
  'a note of some forty bytes, row ' || i FROM n;
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $half)
  INSERT INTO stock SELECT i, CASE i % 4 WHEN 0 THEN 'west' ELSE 'east' END, i, i % 50,
  'a note of some forty bytes, row ' || i FROM n;
  DELETE FROM sqlpost_log;"
best() { sort -n | head -n 1; }
vacuum=() extract=()
for i in $(seq 1 "$repeat"); do
  rm -f "$work/copy.db" "$work/shop.db"
  vacuum+=("$(timed sqlite3 "$hub" "VACUUM INTO '$work/copy.db'")")
  extract+=("$(timed "$sqlpost" extract "$hub" shop --output "$work/shop.db")")
done
rows=$(sqlite3 "$work/shop.db" "SELECT (SELECT count(*) FROM item) + (SELECT count(*) FROM stock)")
expected=$(sqlite3 "$hub" "SELECT (SELECT count(*) FROM item WHERE qty < 90) +
  (SELECT count(*) FROM stock WHERE region = 'east')")
[ "$rows" = "$expected" ] || { echo "bench-extract: $rows rows extracted, $expected expected" >&2; exit 1; }
v=$(printf '%s\n' "${vacuum[@]}" | best)
e=$(printf '%s\n' "${extract[@]}" | best)
echo "bench-extract: hub of $n rows ($(du -m "$hub" | cut -f1) MB), $rows rows in the subset, best of $repeat"
printf '%-14s %10s %10s\n' "" "seconds" "peak MB"
printf '%-14s %10s %10s\n' "VACUUM INTO" $v
printf '%-14s %10s %10s\n' "extract" $e
awk -v e="${e%% *}" -v v="${v%% *}" 'BEGIN { printf "extract / VACUUM INTO: %.2fx (goal <= 2x)\n", e / v }'
