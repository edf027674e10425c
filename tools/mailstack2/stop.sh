#!/usr/bin/env bash
# Stops the servers started by start.sh (Exim, pop3d, imap4d), found only by the pid
# files in $MAILSTACK2_DIR and checked by /proc/PID/exe (a binary of
# $MAILSTACK2_ROOT/tree) before signalling; never kills by name. Children of a server
# that outlive it are ended the same way. Safe to run when nothing is running (rc 0).
# Keeps $MAILSTACK2_DIR (logs) but removes mailstack.env.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"

# stop_server PIDFILE BINARY
stop_server() {
  local pid kids k i
  pid="$(live_server "$1" "$2")"
  [ -n "$pid" ] || return 0
  kids="$(descendants "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid" && [ "$(exe_of "$pid")" = "$2" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  for k in $kids; do
    for ((i = 0; i < 30; i++)); do alive "$k" || break; sleep 0.1; done
    if alive "$k" && [ "$(exe_of "$k")" = "$2" ]; then kill -KILL "$k" 2>/dev/null || true; fi
  done
  rm -f "$1"
}

stop_server "$EXIM_PID_FILE" "$EXIM"
stop_server "$POP3D_PID_FILE" "$POP3D"
stop_server "$IMAP4D_PID_FILE" "$IMAP4D"
rm -f "$D/mailstack.env"
echo "mailstack2: stopped ($D)"
exit 0
