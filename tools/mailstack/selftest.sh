#!/usr/bin/env bash
# Checks a running mailstack with the curl CLI: SMTP (plain, STARTTLS+AUTH, implicit
# TLS), POP3/POP3S, IMAP/IMAPS, OAuth2 bearer tokens, refusals (bad password, wrong
# token, untrusted certificate, unknown user, relay). Uses and then empties the "probe" mailbox. rc 0 when every check passed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"
[ -r "$D/mailstack.env" ] || { echo "selftest: $D/mailstack.env missing; run start.sh" >&2; exit 1; }
set -a; . "$D/mailstack.env"; set +a

pass=0 fail=0
check() {  # check NAME EXPECTED-RC COMMAND...
  local name="$1" want="$2" rc=0
  shift 2
  "$@" >/dev/null 2>"$D/log/selftest.err" || rc=$?
  if [ "$rc" = "$want" ]; then pass=$((pass + 1)); echo "ok   $name"
  else fail=$((fail + 1)); echo "FAIL $name (rc $rc, want $want): $(head -c 300 "$D/log/selftest.err")"; fi
}
CA="$MAILSTACK_CACERT"
U=probe P=probe-secret A=probe@probe.test
msg="$D/log/selftest.eml"
printf 'From: <%s>\r\nTo: <%s>\r\nSubject: selftest\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n' "$A" "$A" >"$msg"
count() { curl -sS -u "$U:$P" "$MAILSTACK_POP3_URL/" | grep -c "^[0-9]" || true; }
wait_count() {  # wait until the probe mailbox holds $1 mails (5 s at most)
  local i
  for ((i = 0; i < 100; i++)); do [ "$(count)" -ge "$1" ] && return 0; sleep 0.05; done
  return 1
}

base="$(count)"
check "smtp 2525 plain" 0 curl -sS "$MAILSTACK_SMTP_URL/selftest.test" --mail-from "$A" --mail-rcpt "$A" -T "$msg"
check "submission STARTTLS+AUTH" 0 curl -sS --ssl-reqd --cacert "$CA" -u "$U:$P" \
  "$MAILSTACK_SUBMISSION_URL/selftest.test" --mail-from "$A" --mail-rcpt "$A" -T "$msg"
check "smtps implicit TLS+AUTH" 0 curl -sS --cacert "$CA" -u "$U:$P" \
  "$MAILSTACK_SMTPS_URL/selftest.test" --mail-from "$A" --mail-rcpt "$A" -T "$msg"
check "submission without TLS refused" 55 curl -sS -u "$U:$P" \
  "$MAILSTACK_SUBMISSION_URL/selftest.test" --mail-from "$A" --mail-rcpt "$A" -T "$msg"
check "submission bad password" 67 curl -sS --ssl-reqd --cacert "$CA" -u "$U:wrong" \
  "$MAILSTACK_SUBMISSION_URL/selftest.test" --mail-from "$A" --mail-rcpt "$A" -T "$msg"
check "untrusted certificate" 60 curl -sS --ssl-reqd -u "$U:$P" \
  "$MAILSTACK_SUBMISSION_URL/selftest.test" --mail-from "$A" --mail-rcpt "$A" -T "$msg"
check "unknown user refused" 55 curl -sS "$MAILSTACK_SMTP_URL/selftest.test" --mail-from "$A" \
  --mail-rcpt nobody@probe.test -T "$msg"
check "relay refused" 55 curl -sS "$MAILSTACK_SMTP_URL/selftest.test" --mail-from "$A" \
  --mail-rcpt someone@example.com -T "$msg"
check "delivery of 3 mails" 0 wait_count $((base + 3))
check "pop3 STLS list" 0 curl -sS --ssl-reqd --cacert "$CA" -u "$U:$P" "$MAILSTACK_POP3_URL/"
check "pop3s list" 0 curl -sS --cacert "$CA" -u "$U:$P" "$MAILSTACK_POP3S_URL/"
check "pop3 bad password" 67 curl -sS -u "$U:wrong" "$MAILSTACK_POP3_URL/"
check "imap STARTTLS search" 0 curl -sS --ssl-reqd --cacert "$CA" -u "$U:$P" -X 'UID SEARCH ALL' "$MAILSTACK_IMAP_URL/INBOX"
check "imaps search" 0 curl -sS --cacert "$CA" -u "$U:$P" -X 'UID SEARCH ALL' "$MAILSTACK_IMAPS_URL/INBOX"
# OAuth2: the first MAILSTACK_OAUTH_USERS mailbox, with its token and with a wrong one
# (the login options as sqlpost sets them: else curl picks CRAM-MD5 with no password).
IFS=: read -r OU OT _ <<<"${MAILSTACK_OAUTH_USERS%% *}"
OPT="AUTH=OAUTHBEARER;AUTH=XOAUTH2"
check "pop3 OAuth2 token" 0 curl -sS --ssl-reqd --cacert "$CA" -u "$OU:" --oauth2-bearer "$OT" --login-options "$OPT" \
  "$MAILSTACK_POP3_URL/"
check "imap OAuth2 token" 0 curl -sS --ssl-reqd --cacert "$CA" -u "$OU:" --oauth2-bearer "$OT" --login-options "$OPT" \
  -X 'UID SEARCH ALL' "$MAILSTACK_IMAP_URL/INBOX"
check "pop3 OAuth2 wrong token" 67 curl -sS --ssl-reqd --cacert "$CA" -u "$OU:" \
  --oauth2-bearer wrong-token --login-options "$OPT" "$MAILSTACK_POP3_URL/"
check "pop3 OAuth2 user refused a password" 67 curl -sS --ssl-reqd --cacert "$CA" -u "$OU:$OT" \
  "$MAILSTACK_POP3_URL/"
body_ok() { curl -sS -u "$U:$P" "$MAILSTACK_POP3_URL/1" | tr -d '\r' | grep -qx '\.\.two dots'; }
check "dot-stuffing round trip" 0 body_ok
# Empty the probe mailbox again: DELE every message in one session (QUIT commits).
n="$(count)" args=()
for ((i = 1; i <= n; i++)); do args+=(-u "$U:$P" -X DELE -I "$MAILSTACK_POP3_URL/$i" --next); done
[ "$n" -gt 0 ] && curl -sS "${args[@]}" -u "$U:$P" "$MAILSTACK_POP3_URL/" >/dev/null
check "probe mailbox emptied" 0 test "$(count)" -eq 0
echo "selftest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
