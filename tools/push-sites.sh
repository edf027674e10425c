# shellcheck shell=bash disable=SC2154  # $sqlpost and MAILSTACK_* come from the sourcing script
# Sourced by tools/bench-push.sh and tests/push_mail.sh: a hub and one remote that
# send through the mailstack's Postfix (submission, STARTTLS + AUTH) and read their
# mailboxes (hq, site1) by IMAP with STARTTLS, and running agents in the background.
# Needs $sqlpost and the MAILSTACK_* variables (tools/mailstack/ensure.sh).

push_password_of() { tr ' ' '\n' <<<"$MAILSTACK_USERS" | awk -F: -v u="$1" '$1 == u { print $2 }'; }

# push_mail_config DB USER: link=smtp out, receive=imap in, the stack's CA.
push_mail_config() {
  "$sqlpost" config "$1" link=smtp smtp.host=127.0.0.1 smtp.port="$MAILSTACK_SUBMISSION_PORT" \
    receive=imap imap.host=127.0.0.1 imap.port="$MAILSTACK_IMAP_PORT" imap.user="$2" \
    tls.ca_file="$MAILSTACK_CACERT" >/dev/null
  push_password_of "$2" | "$sqlpost" config "$1" --secret imap.password >/dev/null
}

# push_setup DIR: DIR/hq.db publishes item(id, name) to DIR/site1.db.
push_setup() {
  mkdir -p "$1"
  push_sql "$1/hq.db" "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT)"
  "$sqlpost" init "$1/hq.db" --site hq --address hq@hq.test >/dev/null
  push_mail_config "$1/hq.db" hq
  "$sqlpost" publish "$1/hq.db" p item >/dev/null
  "$sqlpost" site add "$1/hq.db" site1 --address site1@site1.test >/dev/null
  "$sqlpost" subscribe "$1/hq.db" site1 p >/dev/null
  "$sqlpost" extract "$1/hq.db" site1 --output "$1/site1.db" >/dev/null
  push_mail_config "$1/site1.db" site1
}

# push_start DB INTERVAL LOG PATTERN: starts `sqlpost run DB --every INTERVAL -v` in
# the background (its pid in $push_pid) and waits (at most 60 s) until its log holds
# PATTERN (grep): e.g. "received" (the first pass read the mailbox) or "IMAP IDLE"
# (its IDLE connection is waiting).
push_start() {
  "$sqlpost" run "$1" --every "$2" -v --log "$3" >/dev/null 2>&1 &
  push_pid=$!
  local i
  for ((i = 0; i < 600; i++)); do
    grep -q "$4" "$3" 2>/dev/null && return 0
    kill -0 "$push_pid" 2>/dev/null || { echo "agent for $1 died; its log:" >&2; cat "$3" >&2; return 1; }
    sleep 0.1
  done
  echo "agent for $1 did not log '$4' in 60 s; its log:" >&2
  cat "$3" >&2
  return 1
}

# push_stop PID: SIGTERM, then wait for it.
push_stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# push_sql DB SQL: the sqlite3 shell, waiting (10 s) for an agent's write lock.
push_sql() { sqlite3 -cmd ".timeout 10000" "$@"; }
