#!/usr/bin/env bash
# End-to-end benchmark: 100k changed rows from a hub to a remote — prepare and send,
# deliver, receive, apply — through the real Postfix + Dovecot of tools/mailstack
# (SMTP submission with STARTTLS + AUTH, POP3 with STLS), beside the same through the
# file link (the baseline, measured in the same run). Prints rows/s for both.
# Usage: tools/bench-mail.sh [ROWS]     (needs a built sqlpost; starts the mailstack
#        if it is not running, which needs root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SQLPOST_BUILD_DIR:-$root/build}"
sqlpost="$build/agent/sqlpost"
rows="${1:-100000}"
[ -x "$sqlpost" ] || { echo "bench-mail: build sqlpost first (cmake --build build)" >&2; exit 1; }
. "$root/tools/mailstack/ensure.sh"
password_of() { tr ' ' '\n' <<<"$MAILSTACK_USERS" | awk -F: -v u="$1" '$1 == u { print $2 }'; }
work="$(mktemp -d /tmp/sqlpost-bench-mail.XXXXXX)"
trap 'rm -rf "$work"; mailstack_release' EXIT

# setup LINK DIR: a hub and an extracted remote, the remote's table still empty.
setup() {
  local dir="$2"
  mkdir -p "$dir"
  sqlite3 "$dir/hq.db" "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER,
    price REAL, note TEXT, flag INTEGER, stamp TEXT, data BLOB)"
  "$sqlpost" init "$dir/hq.db" --site hq --address hq@hq.test >/dev/null
  if [ "$1" = mail ]; then
    "$sqlpost" config "$dir/hq.db" link=smtp smtp.host=127.0.0.1 \
      smtp.port="$MAILSTACK_SUBMISSION_PORT" pop3.host=127.0.0.1 pop3.port="$MAILSTACK_POP3_PORT" \
      pop3.user=hq tls.ca_file="$MAILSTACK_CACERT"
    password_of hq | "$sqlpost" config "$dir/hq.db" --secret pop3.password
  else
    "$sqlpost" config "$dir/hq.db" link=file file.dir="$dir/mail"
  fi
  "$sqlpost" publish "$dir/hq.db" p item >/dev/null
  "$sqlpost" site add "$dir/hq.db" site1 --address site1@site1.test >/dev/null
  "$sqlpost" subscribe "$dir/hq.db" site1 p >/dev/null
  "$sqlpost" extract "$dir/hq.db" site1 --output "$dir/site1.db" >/dev/null
  if [ "$1" = mail ]; then
    "$sqlpost" config "$dir/site1.db" pop3.user=site1 tls.ca_file="$MAILSTACK_CACERT"
    password_of site1 | "$sqlpost" config "$dir/site1.db" --secret pop3.password
  fi
  sqlite3 "$dir/hq.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
    INSERT INTO item SELECT i, 'item ' || i, i % 1000, i * 0.25, 'note for ' || i, i % 2,
    '2026-11-25 10:00:' || (i % 60), randomblob(16) FROM n"
}

# measure DIR: seconds from the hub's send to the last row applied at the remote.
measure() {
  local dir="$1" start end applied=0 i
  start="$(date +%s.%N)"
  "$sqlpost" run "$dir/hq.db" --once >/dev/null
  for ((i = 0; i < 600; i++)); do
    "$sqlpost" run "$dir/site1.db" --once --receive-only >/dev/null || true
    applied="$(sqlite3 "$dir/site1.db" "SELECT count(*) FROM item")"
    [ "$applied" -ge "$rows" ] && break
    sleep 0.05
  done
  end="$(date +%s.%N)"
  [ "$applied" -ge "$rows" ] || { echo "bench-mail: only $applied of $rows rows arrived" >&2; exit 1; }
  diff <(sqlite3 "$dir/hq.db" "SELECT * FROM item ORDER BY id") \
       <(sqlite3 "$dir/site1.db" "SELECT * FROM item ORDER BY id") >/dev/null ||
    { echo "bench-mail: the remote's rows differ from the hub's" >&2; exit 1; }
  echo "$start $end" | awk '{ printf "%.3f", $2 - $1 }'
}

setup file "$work/file"
setup mail "$work/mail"
file_s="$(measure "$work/file")"
mail_s="$(measure "$work/mail")"
parts="$(sqlite3 "$work/mail/hq.db" "SELECT count(*) FROM sqlpost_outbox")"
awk -v r="$rows" -v f="$file_s" -v m="$mail_s" -v p="$parts" 'BEGIN {
  printf "%-34s %10s %12s\n", "hub -> remote, " r " rows", "seconds", "rows/s"
  printf "%-34s %10.3f %12.0f\n", "file link (baseline)", f, r / f
  printf "%-34s %10.3f %12.0f\n", "smtp+pop3 via Postfix/Dovecot", m, r / m
  printf "mail/file time ratio %.2f; %d mail part(s) of <= max_message_bytes\n", m / f, p }'
