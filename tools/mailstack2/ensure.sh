# Sourced by scripts that need the second test mail stack: makes sure the Exim and
# Mailutils servers of $MAILSTACK2_DIR are alive, starts them when they are not, and
# loads its mailstack.env (tools/mailstack's variable names) into the environment.
#
#   . tools/mailstack2/ensure.sh        then, at exit:   mailstack2_release
#
# mailstack2_release stops the servers only when this script started them.
_mailstack2_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MAILSTACK2_STARTED_HERE=0

mailstack2_alive() (
  . "$_mailstack2_here/common.sh"
  [ -n "$(live_server "$EXIM_PID_FILE" "$EXIM")" ] &&
    [ -n "$(live_server "$POP3D_PID_FILE" "$POP3D")" ] &&
    [ -n "$(live_server "$IMAP4D_PID_FILE" "$IMAP4D")" ] && [ -r "$D/mailstack.env" ]
)

mailstack2_release() {
  if [ "$MAILSTACK2_STARTED_HERE" = 1 ]; then
    bash "$_mailstack2_here/stop.sh" >&2
    MAILSTACK2_STARTED_HERE=0
  fi
}

if ! mailstack2_alive; then
  bash "$_mailstack2_here/stop.sh" >/dev/null 2>&1
  bash "$_mailstack2_here/start.sh" >&2
  MAILSTACK2_STARTED_HERE=1
fi
set -a
. "${MAILSTACK2_DIR:-/tmp/mailstack2}/mailstack.env"
set +a
