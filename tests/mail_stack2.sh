#!/usr/bin/env bash
# e2e_mail_test against the second real mail stack (tools/mailstack2: Exim for SMTP,
# GNU Mailutils pop3d/imap4d for the mailboxes) instead of Postfix + Dovecot: every
# case but the four that are about Postfix or Dovecot themselves (ETRN and Postfix's
# fast_flush_domains, stopping Postfix during a run, Dovecot's log for POP-before-SMTP,
# the bounce Postfix's error transport makes for bounce.test).
# Loads the stack's mailstack.env (tools/mailstack's variable names) over whatever is
# in the environment. Without a running stack2: skipped (exit 77) with a hint.
# Usage: mail_stack2.sh PATH/TO/e2e_mail_test
set -euo pipefail
test_bin="$1"
env_file="${MAILSTACK2_DIR:-/tmp/mailstack2}/mailstack.env"
if [ ! -r "$env_file" ]; then
  echo "mail_stack2: $env_file is missing: skipped (start it with tools/mailstack2/start.sh)"
  exit 77
fi
set -a
. "$env_file"
set +a
exec "$test_bin" "--test-case-exclude=smtp.etrn*,Postfix stopped*,smtp.pop_before_smtp*,a part Postfix accepts*"
