#!/usr/bin/env bash
# Starts a throw-away Postfix + Dovecot on 127.0.0.1 (high ports only) for the tests.
#
# Contract: installs missing Debian packages (apt-get, non-interactive; the system
# Postfix/Dovecot are never configured or started), refuses to start when an instance
# of $MAILSTACK_DIR is running or a port is taken (rc 1), wipes and recreates
# $MAILSTACK_DIR (default /tmp/mailstack; only if it holds the .mailstack marker or
# is empty), makes a self-signed certificate (localhost, IP:127.0.0.1), creates the
# MAILSTACK_USERS mailboxes (password logins) and the MAILSTACK_OAUTH_USERS ones (OAuth2
# bearer tokens only, checked by Dovecot against oauth_introspect.py, a local RFC 7662
# endpoint on $MAILSTACK_OAUTH_PORT started first), starts both servers and writes
# $MAILSTACK_DIR/mailstack.env (MAILSTACK_*_URL, *_PORT, CACERT, USERS, OAUTH_USERS,
# MAILDIRS, MSG_LIMIT). On any failure it
# stops what it started and prints the log tails. Needs root; no systemd, no syslog.
# Settings (environment): see common.sh. Stop with stop.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"

die() { echo "mailstack: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "start.sh must run as root (Postfix and Dovecot drop privileges themselves)"

packages=(postfix dovecot-core dovecot-pop3d dovecot-imapd openssl ca-certificates curl
          libcurl4-openssl-dev swaks libnet-ssleay-perl python3)

install_packages() {
  local missing=() p created_policy=0
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "mailstack: installing ${missing[*]} (log: /tmp/mailstack-apt.log)"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  } </dev/null >/tmp/mailstack-apt.log 2>&1 || rc=$?
  [ "$created_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || { tail -n 20 /tmp/mailstack-apt.log >&2; die "apt-get failed (rc $rc)"; }
}

refuse_if_running() {
  [ -z "$(live_master "$POSTFIX_PID_FILE" "$POSTFIX_MASTER")" ] ||
    die "Postfix of $D is already running (stop it with stop.sh)"
  [ -z "$(live_master "$DOVECOT_PID_FILE" "$DOVECOT_MASTER")" ] ||
    die "Dovecot of $D is already running (stop it with stop.sh)"
  [ -z "$(live_oauth)" ] || die "the OAuth2 endpoint of $D is already running (stop it with stop.sh)"
  local port
  for port in $(all_ports); do
    if listening "$port"; then die "port $port is already in use"; fi
  done
}

fresh_dir() {
  if [ -d "$D" ] && [ ! -e "$D/.mailstack" ] && [ -n "$(ls -A "$D")" ]; then
    die "$D exists, is not empty and is not a mailstack directory; refusing to wipe it"
  fi
  rm -rf "$D"
  mkdir -p "$D"/{etc/postfix,etc/dovecot,tls,mail,log,run,state,spool}
  touch "$D/.mailstack"
}

make_cert() {
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" >"$D/log/openssl.log" 2>&1 ||
    die "openssl failed: $(tail -n 3 "$D/log/openssl.log")"
  chmod 644 "$D/tls/cert.pem"
  chmod 600 "$D/tls/key.pem"
}

# Users file for Dovecot, virtual map for Postfix, one Maildir per login.
make_users() {
  local entry login pass addrs addr domains=() maildirs=()
  : >"$D/etc/dovecot/users"
  : >"$D/etc/postfix/vmailbox"
  for entry in $MAILSTACK_USERS; do
    IFS=: read -r login pass addrs <<<"$entry"
    [ -n "$login" ] && [ -n "$pass" ] && [ -n "$addrs" ] || die "bad MAILSTACK_USERS entry '$login:...'"
    echo "$login:{PLAIN}$pass::::::" >>"$D/etc/dovecot/users"
    for addr in ${addrs//,/ }; do
      echo "$addr $login/" >>"$D/etc/postfix/vmailbox"
      domains+=("${addr#*@}")
    done
    mkdir -p "$D/mail/$login"/{new,cur,tmp}
    maildirs+=("$D/mail/$login")
  done
  : >"$D/etc/oauth-tokens"
  chmod 600 "$D/etc/oauth-tokens"
  for entry in $MAILSTACK_OAUTH_USERS; do
    IFS=: read -r login pass addrs <<<"$entry"
    [ -n "$login" ] && [ -n "$pass" ] && [ -n "$addrs" ] || die "bad MAILSTACK_OAUTH_USERS entry '$login:...'"
    echo "$pass $login" >>"$D/etc/oauth-tokens"
    for addr in ${addrs//,/ }; do
      echo "$addr $login/" >>"$D/etc/postfix/vmailbox"
      domains+=("${addr#*@}")
    done
    mkdir -p "$D/mail/$login"/{new,cur,tmp}
    maildirs+=("$D/mail/$login")
  done
  # Accepted, then bounced with a delivery status notification (main.cf transport_maps).
  echo "shop@bounce.test bounce/" >>"$D/etc/postfix/vmailbox"
  echo "bounce.test bouncer:" \
    >"$D/etc/postfix/transport"
  domains+=(bounce.test)
  DOMAINS="$(printf '%s\n' "${domains[@]}" | sort -u | tr '\n' ' ')"
  MAILDIRS="${maildirs[*]}"
  chown -R vmail:vmail "$D/mail"
  chgrp dovecot "$D/etc/dovecot/users"
  chmod 640 "$D/etc/dovecot/users"
}

fill() {
  sed -e "s|@D@|$D|g" -e "s|@UID@|$VMAIL_UID|g" -e "s|@GID@|$VMAIL_GID|g" \
    -e "s|@DOMAINS@|$DOMAINS|g" -e "s|@MSG_LIMIT@|$MAILSTACK_MSG_LIMIT|g" \
    -e "s|@SMTP_PORT@|$MAILSTACK_SMTP_PORT|g" -e "s|@SUBMISSION_PORT@|$MAILSTACK_SUBMISSION_PORT|g" \
    -e "s|@SMTPS_PORT@|$MAILSTACK_SMTPS_PORT|g" -e "s|@POP3_PORT@|$MAILSTACK_POP3_PORT|g" \
    -e "s|@POP3S_PORT@|$MAILSTACK_POP3S_PORT|g" -e "s|@IMAP_PORT@|$MAILSTACK_IMAP_PORT|g" \
    -e "s|@IMAPS_PORT@|$MAILSTACK_IMAPS_PORT|g" -e "s|@OAUTH_PORT@|$MAILSTACK_OAUTH_PORT|g" \
    "$1" >"$2"
  if grep -v '^[[:space:]]*#' "$2" | grep -q '@[A-Z_]*@'; then die "unfilled placeholder in $2"; fi
}

write_configs() {
  fill "$here/main.cf.in" "$D/etc/postfix/main.cf"
  fill "$here/master.cf.in" "$D/etc/postfix/master.cf"
  fill "$here/dovecot.conf.in" "$D/etc/dovecot/dovecot.conf"
  fill "$here/dovecot-oauth2.conf.ext.in" "$D/etc/dovecot/dovecot-oauth2.conf.ext"
  # Postfix re-reads files younger than a second until they "cool down": backdate them.
  touch -d "@$(($(date +%s) - 60))" "$D/etc/postfix/main.cf" "$D/etc/postfix/master.cf" \
    "$D/etc/postfix/vmailbox" "$D/etc/postfix/transport"
}

write_env() {
  local h=127.0.0.1 tmp="$D/mailstack.env.tmp"
  cat >"$tmp" <<ENV
MAILSTACK_DIR=$D
MAILSTACK_HOST=$h
MAILSTACK_SMTP_PORT=$MAILSTACK_SMTP_PORT
MAILSTACK_SUBMISSION_PORT=$MAILSTACK_SUBMISSION_PORT
MAILSTACK_SMTPS_PORT=$MAILSTACK_SMTPS_PORT
MAILSTACK_POP3_PORT=$MAILSTACK_POP3_PORT
MAILSTACK_POP3S_PORT=$MAILSTACK_POP3S_PORT
MAILSTACK_IMAP_PORT=$MAILSTACK_IMAP_PORT
MAILSTACK_IMAPS_PORT=$MAILSTACK_IMAPS_PORT
MAILSTACK_SMTP_URL=smtp://$h:$MAILSTACK_SMTP_PORT
MAILSTACK_SUBMISSION_URL=smtp://$h:$MAILSTACK_SUBMISSION_PORT
MAILSTACK_SMTPS_URL=smtps://$h:$MAILSTACK_SMTPS_PORT
MAILSTACK_POP3_URL=pop3://$h:$MAILSTACK_POP3_PORT
MAILSTACK_POP3S_URL=pop3s://$h:$MAILSTACK_POP3S_PORT
MAILSTACK_IMAP_URL=imap://$h:$MAILSTACK_IMAP_PORT
MAILSTACK_IMAPS_URL=imaps://$h:$MAILSTACK_IMAPS_PORT
MAILSTACK_OAUTH_PORT=$MAILSTACK_OAUTH_PORT
MAILSTACK_OAUTH_URL=http://$h:$MAILSTACK_OAUTH_PORT/introspect
MAILSTACK_CACERT=$D/tls/cert.pem
MAILSTACK_MSG_LIMIT=$MAILSTACK_MSG_LIMIT
MAILSTACK_USERS="$MAILSTACK_USERS"
MAILSTACK_OAUTH_USERS="$MAILSTACK_OAUTH_USERS"
MAILSTACK_MAILDIRS="$MAILDIRS"
ENV
  mv "$tmp" "$D/mailstack.env"
}

wait_ready() {
  local port i
  for port in $(all_ports); do
    for ((i = 0; i < 100; i++)); do listening "$port" && break; sleep 0.05; done
    listening "$port" || die "nothing listens on 127.0.0.1:$port"
  done
  for ((i = 0; i < 100; i++)); do [ -S "$D/spool/private/auth" ] && break; sleep 0.05; done
  [ -S "$D/spool/private/auth" ] || die "Dovecot SASL socket $D/spool/private/auth missing"
}

# The token introspection endpoint (Dovecot's oauth2 passdb asks it); ready when it
# wrote its pid file (it does so once it listens).
start_oauth() {
  local python=/usr/bin/python3 i
  [ -x "$python" ] || python="$(command -v python3)" || die "python3 is missing"
  setsid "$python" "$here/$OAUTH_SCRIPT" "$MAILSTACK_OAUTH_PORT" "$D/etc/oauth-tokens" \
    "$OAUTH_PID_FILE" </dev/null >>"$D/log/oauth.log" 2>&1 &
  for ((i = 0; i < 100; i++)); do [ -n "$(live_oauth)" ] && break; sleep 0.05; done
  [ -n "$(live_oauth)" ] || die "the OAuth2 endpoint did not start: $(tail -n 5 "$D/log/oauth.log")"
}

on_failure() {
  local rc=$?
  [ "$rc" -eq 0 ] && return
  echo "mailstack: start failed (rc $rc); stopping what was started" >&2
  local f
  for f in "$D/log/postfix.log" "$D/log/dovecot.log" "$D/log/oauth.log"; do
    [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }
  done
  bash "$here/stop.sh" >&2 || true
  exit "$rc"
}

case "$MAILSTACK_MSG_LIMIT" in '' | *[!0-9]*) die "MAILSTACK_MSG_LIMIT must be a number" ;; esac
case "$MAILSTACK_USERS$MAILSTACK_OAUTH_USERS" in
  *\"* | *\$* | *\\* | *\`*) die "MAILSTACK_USERS and MAILSTACK_OAUTH_USERS must not contain \" \$ \\ or \`" ;;
esac
case "$MAILSTACK_OAUTH_PORT" in '' | *[!0-9]*) die "MAILSTACK_OAUTH_PORT must be a number" ;; esac
install_packages
refuse_if_running
id vmail >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
  --shell /usr/sbin/nologin vmail
VMAIL_UID="$(id -u vmail)"
VMAIL_GID="$(id -g vmail)"
fresh_dir
trap on_failure EXIT
make_cert
make_users
write_configs
start_oauth
postfix -c "$D/etc/postfix" start >"$D/log/postfix-start.log" 2>&1 ||
  die "postfix start failed: $(tail -n 5 "$D/log/postfix-start.log") (see $D/log/postfix.log)"
dovecot -c "$D/etc/dovecot/dovecot.conf" >"$D/log/dovecot-start.log" 2>&1 ||
  die "dovecot failed: $(tail -n 5 "$D/log/dovecot-start.log")"
wait_ready
write_env
trap - EXIT
echo "mailstack: running in $D (env: $D/mailstack.env)"
