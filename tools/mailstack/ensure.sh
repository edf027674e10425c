# Sourced by every script that needs the test mail servers (demo.sh --mail,
# bench-mail.sh, test.sh): makes sure the Postfix + Dovecot of $MAILSTACK_DIR are
# alive (their pid files name live master processes), starts them when they are
# not, and loads mailstack.env into the environment.
#
#   . tools/mailstack/ensure.sh        then, at exit:   mailstack_release
#
# mailstack_release stops the servers only when this script started them, so a
# stack someone else started (e.g. test.sh for the whole test run) stays up.
# Never trusts a leftover mailstack.env: a stack whose servers died is started anew.
_mailstack_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MAILSTACK_STARTED_HERE=0

mailstack_alive() (
  . "$_mailstack_here/common.sh"
  [ -n "$(live_master "$POSTFIX_PID_FILE" "$POSTFIX_MASTER")" ] &&
    [ -n "$(live_master "$DOVECOT_PID_FILE" "$DOVECOT_MASTER")" ] &&
    [ -r "$D/mailstack.env" ]
)

mailstack_release() {
  if [ "$MAILSTACK_STARTED_HERE" = 1 ]; then
    bash "$_mailstack_here/stop.sh" >&2
    MAILSTACK_STARTED_HERE=0
  fi
}

if ! mailstack_alive; then
  bash "$_mailstack_here/stop.sh" >/dev/null 2>&1 # half-dead leftovers of an earlier run
  bash "$_mailstack_here/start.sh" >&2
  MAILSTACK_STARTED_HERE=1
fi
set -a
. "${MAILSTACK_DIR:-/tmp/mailstack}/mailstack.env"
set +a
