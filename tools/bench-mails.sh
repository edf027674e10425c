#!/usr/bin/env bash
# Many mails per pass through the real Postfix + Dovecot of tools/mailstack: N mails
# sent in one SMTP session against one login per mail, and read back in one POP3
# session against one login per mail (build/tools/bench-mails; see its header).
# Usage: tools/bench-mails.sh [MAILS] [PAYLOAD_BYTES]   (needs a built bench-mails;
#        starts the mailstack if it is not running, which needs root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SQLPOST_BUILD_DIR:-$root/build}"
bench="$build/tools/bench-mails"
[ -x "$bench" ] || { echo "bench-mails: build it first (cmake --build build --target bench-mails)" >&2; exit 1; }
. "$root/tools/mailstack/ensure.sh"
trap mailstack_release EXIT
password_of() { tr ' ' '\n' <<<"$MAILSTACK_USERS" | awk -F: -v u="$1" '$1 == u { print $2 }'; }
"$bench" --smtp-port "$MAILSTACK_SUBMISSION_PORT" --pop3-port "$MAILSTACK_POP3_PORT" \
  --ca "$MAILSTACK_CACERT" --from-user hq --from-password "$(password_of hq)" \
  --to-user site2 --to-password "$(password_of site2)" --to site2@site2.test \
  --mails "${1:-200}" --bytes "${2:-2000}"
