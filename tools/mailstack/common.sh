# Shared settings and helpers of start.sh / stop.sh / selftest.sh (sourced, not run).
# Every setting can be overridden from the environment.
. "$(dirname "${BASH_SOURCE[0]}")/../stacklib.sh"
MAILSTACK_DIR="${MAILSTACK_DIR:-/tmp/mailstack}"
MAILSTACK_SMTP_PORT="${MAILSTACK_SMTP_PORT:-2525}"
MAILSTACK_SUBMISSION_PORT="${MAILSTACK_SUBMISSION_PORT:-2587}"
MAILSTACK_SMTPS_PORT="${MAILSTACK_SMTPS_PORT:-2465}"
MAILSTACK_POP3_PORT="${MAILSTACK_POP3_PORT:-2110}"
MAILSTACK_POP3S_PORT="${MAILSTACK_POP3S_PORT:-2995}"
MAILSTACK_IMAP_PORT="${MAILSTACK_IMAP_PORT:-2143}"
MAILSTACK_IMAPS_PORT="${MAILSTACK_IMAPS_PORT:-2993}"
MAILSTACK_OAUTH_PORT="${MAILSTACK_OAUTH_PORT:-2089}"
MAILSTACK_MSG_LIMIT="${MAILSTACK_MSG_LIMIT:-10240000}"
# login:password:addr[,addr...] separated by spaces; "@domain" = catch-all of the domain.
# "probe" is reserved for the transport link tests (tests/mail_link_test.cpp).
MAILSTACK_USERS="${MAILSTACK_USERS:-hq:hq-secret:hq@hq.test site1:site1-secret:site1@site1.test site2:site2-secret:site2@site2.test site3:site3-secret:site3@site3.test probe:probe-secret:probe@probe.test}"
# login:token:addr[,addr...]: mailboxes that log in only with an OAuth2 bearer token
# (XOAUTH2/OAUTHBEARER, checked by Dovecot against the introspection endpoint
# oauth_introspect.py on 127.0.0.1:$MAILSTACK_OAUTH_PORT); they have no password.
MAILSTACK_OAUTH_USERS="${MAILSTACK_OAUTH_USERS:-ohub:ohub-access-token-7f3a9d:ohub@ohub.test orem:orem-access-token-c91e42:orem@orem.test}"

D="$MAILSTACK_DIR"
POSTFIX_PID_FILE="$D/spool/pid/master.pid"
DOVECOT_PID_FILE="$D/run/dovecot/master.pid"
POSTFIX_MASTER=/usr/lib/postfix/sbin/master
DOVECOT_MASTER=/usr/sbin/dovecot
OAUTH_PID_FILE="$D/run/oauth-introspect.pid"
OAUTH_SCRIPT=oauth_introspect.py

all_ports() {
  echo "$MAILSTACK_SMTP_PORT $MAILSTACK_SUBMISSION_PORT $MAILSTACK_SMTPS_PORT" \
       "$MAILSTACK_POP3_PORT $MAILSTACK_POP3S_PORT $MAILSTACK_IMAP_PORT $MAILSTACK_IMAPS_PORT" \
       "$MAILSTACK_OAUTH_PORT"
}

# Prints the pid of a live master started by us from pid file $1 with binary $2.
live_master() { live_pid "$1" "$2"; }

# Prints the pid of the live introspection endpoint started by us (its command line
# names oauth_introspect.py and its pid file), or nothing.
live_oauth() {
  local pid
  pid="$(pid_from "$OAUTH_PID_FILE")"
  [ -n "$pid" ] && alive "$pid" &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$OAUTH_SCRIPT" && echo "$pid"
  return 0
}
