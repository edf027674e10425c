#!/usr/bin/env bash
# Stops the mail servers started by start.sh: Postfix first (its smtpd processes hold
# SASL connections to Dovecot auth), then Dovecot, then the OAuth2 endpoint. Finds them only by the pid files in
# $MAILSTACK_DIR and checks /proc/PID/exe before signalling; never kills by name.
# Safe to run when nothing is running (rc 0). Leaves $MAILSTACK_DIR in place (logs)
# but removes mailstack.env, so nothing talks to servers that are gone.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"

# True if pid $1 still runs a Postfix or Dovecot binary.
mail_binary() {
  case "$(exe_of "$1")" in /usr/lib/postfix/* | /usr/lib/dovecot/* | /usr/sbin/dovecot) return 0 ;; esac
  return 1
}

# stop_master PIDFILE BINARY: SIGTERM the master, wait, then clean up its recorded
# children that are still alive and still run a Postfix/Dovecot binary.
stop_master() {
  local pid kids k i
  pid="$(live_master "$1" "$2")"
  [ -n "$pid" ] || return 0
  kids="$(descendants "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid" && [ "$(exe_of "$pid")" = "$2" ]; then
    echo "mailstack: $2 ($pid) ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  for k in $kids; do
    for ((i = 0; i < 30; i++)); do alive "$k" || break; sleep 0.1; done
    if alive "$k" && mail_binary "$k"; then kill -KILL "$k" 2>/dev/null || true; fi
  done
}

# The OAuth2 introspection endpoint, found by its pid file and command line.
stop_oauth() {
  local pid i
  pid="$(live_oauth)"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  if [ -n "$(live_oauth)" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$OAUTH_PID_FILE"
}

stop_master "$POSTFIX_PID_FILE" "$POSTFIX_MASTER"
stop_master "$DOVECOT_PID_FILE" "$DOVECOT_MASTER"
stop_oauth
rm -f "$D/mailstack.env"
echo "mailstack: stopped ($D)"
exit 0
