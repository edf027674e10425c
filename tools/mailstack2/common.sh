# Shared settings and helpers of the second test mail stack (Exim + GNU Mailutils
# pop3d/imap4d; sourced, not run). Every setting can be overridden from the environment.
# The servers are never installed: their .debs are fetched (fetch.sh) and unpacked
# under $MAILSTACK2_ROOT/tree, because exim4 conflicts with Postfix as a package.
. "$(dirname "${BASH_SOURCE[0]}")/../stacklib.sh"
MAILSTACK2_DIR="${MAILSTACK2_DIR:-/tmp/mailstack2}"
MAILSTACK2_ROOT="${MAILSTACK2_ROOT:-/var/cache/sqlpost/mailstack2}"
MAILSTACK2_SMTP_PORT="${MAILSTACK2_SMTP_PORT:-3525}"
MAILSTACK2_SUBMISSION_PORT="${MAILSTACK2_SUBMISSION_PORT:-3587}"
MAILSTACK2_SMTPS_PORT="${MAILSTACK2_SMTPS_PORT:-3465}"
MAILSTACK2_POP3_PORT="${MAILSTACK2_POP3_PORT:-3110}"
MAILSTACK2_POP3S_PORT="${MAILSTACK2_POP3S_PORT:-3995}"
MAILSTACK2_IMAP_PORT="${MAILSTACK2_IMAP_PORT:-3143}"
MAILSTACK2_IMAPS_PORT="${MAILSTACK2_IMAPS_PORT:-3993}"
MAILSTACK2_MSG_LIMIT="${MAILSTACK2_MSG_LIMIT:-10240000}"
# login:password:addr[,addr...] separated by spaces (as tools/mailstack's MAILSTACK_USERS).
MAILSTACK2_USERS="${MAILSTACK2_USERS:-hq:hq-secret:hq@hq.test site1:site1-secret:site1@site1.test site2:site2-secret:site2@site2.test site3:site3-secret:site3@site3.test probe:probe-secret:probe@probe.test}"

D="$MAILSTACK2_DIR"
TREE="$MAILSTACK2_ROOT/tree"
EXIM="$TREE/usr/sbin/exim4"
POP3D="$TREE/usr/sbin/pop3d"
IMAP4D="$TREE/usr/sbin/imap4d"
NSS_WRAPPER="$TREE/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"
EXIM_PID_FILE="$D/run/exim/exim.pid"
POP3D_PID_FILE="$D/run/pop3d.pid"
IMAP4D_PID_FILE="$D/run/imap4d.pid"
# The servers themselves; libraries that are not installed come from the tree.
MAILSTACK2_PACKAGES=(exim4-daemon-light mailutils-pop3d mailutils-imap4d libnss-wrapper)
MAILSTACK2_LIBRARIES=(libmailutils9 mailutils-common libmu-dbm9 libgsasl18 libidn12
  libkyotocabinet16v5 libgssglue1 liblzo2-2 libmariadb3 libntlm0 libltdl7 libpq5)

tree_library_path() {
  echo "$TREE/usr/lib/x86_64-linux-gnu:$TREE/lib/x86_64-linux-gnu"
}

all_ports() {
  echo "$MAILSTACK2_SMTP_PORT $MAILSTACK2_SUBMISSION_PORT $MAILSTACK2_SMTPS_PORT" \
       "$MAILSTACK2_POP3_PORT $MAILSTACK2_POP3S_PORT $MAILSTACK2_IMAP_PORT $MAILSTACK2_IMAPS_PORT"
}


# The pid of a live server started by us from pid file $1 running binary $2, or nothing.
live_server() { live_pid "$1" "$2"; }
