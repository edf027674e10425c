#!/usr/bin/env bash
# ctest: push delivery through the real mail servers. The remote runs `--every 3600`
# in the background, so only IMAP IDLE can bring the hub's change in time: the hub
# commits one row and sends it with one pass; the row must be applied at the remote
# within 60 s (a generous bound: the verdict is "it arrived", not "it was fast").
# Then the same with push=no, where the row must NOT arrive within 10 s (the agent
# sleeps for an hour), which proves the first arrival came from IDLE.
# Skipped (77) with SQLPOST_SKIP_MAIL=1.
set -euo pipefail
if [ "${SQLPOST_SKIP_MAIL:-0}" = "1" ]; then
  echo "SQLPOST_SKIP_MAIL=1: push_mail skipped"
  exit 77
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sqlpost="${SQLPOST_BIN:?SQLPOST_BIN names the sqlpost program}"
work="$1"
rm -rf "$work" && mkdir -p "$work"
. "$root/tools/push-sites.sh"
push_pid=""
trap '[ -z "$push_pid" ] || push_stop "$push_pid"' EXIT

# count DB ID: rows of item with that id.
count() { push_sql "$1" "SELECT count(*) FROM item WHERE id = $2"; }

# arrives ID SECONDS: true when the row shows up at the remote within SECONDS.
arrives() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ "$(count "$work/site1.db" "$1")" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}

push_setup "$work"
"$sqlpost" run "$work/site1.db" --once >/dev/null 2>&1 || true # empty the mailbox of leftovers
push_start "$work/site1.db" 3600 "$work/site1.log" "waiting for new mail with IMAP IDLE"
push_sql "$work/hq.db" "INSERT INTO item VALUES (1, 'pushed')"
"$sqlpost" run "$work/hq.db" --once >/dev/null
arrives 1 60 || { echo "FAIL: the row did not arrive in 60 s; remote log:"; cat "$work/site1.log"; exit 1; }
grep -q "new mail (IMAP IDLE); starting a pass" "$work/site1.log" ||
  { echo "FAIL: the remote's log does not say IDLE woke it"; cat "$work/site1.log"; exit 1; }
push_stop "$push_pid"
grep -q "stop requested" "$work/site1.log" || { echo "FAIL: no orderly stop"; exit 1; }
echo "ok: IMAP IDLE woke the remote; the row arrived"

"$sqlpost" config "$work/site1.db" push=no >/dev/null
push_start "$work/site1.db" 3600 "$work/site1-plain.log" "received .* part(s)" # pass 1 done
push_sql "$work/hq.db" "INSERT INTO item VALUES (2, 'not pushed')"
"$sqlpost" run "$work/hq.db" --once >/dev/null
if arrives 2 10; then
  echo "FAIL: with push=no the row arrived although the agent sleeps an hour"
  exit 1
fi
push_stop "$push_pid"
push_pid=""
"$sqlpost" run "$work/site1.db" --once >/dev/null
[ "$(count "$work/site1.db" 2)" = 1 ] || { echo "FAIL: the row did not arrive with a pass"; exit 1; }
diff <(push_sql "$work/hq.db" "SELECT * FROM item ORDER BY id") \
  <(push_sql "$work/site1.db" "SELECT * FROM item ORDER BY id")
[ "$(push_sql "$work/site1.db" "PRAGMA integrity_check")" = ok ]
echo "ok: with push=no the agent waited for its interval"
