#!/usr/bin/env bash
# Starts the second throw-away test mail stack on 127.0.0.1 (high ports only): Exim
# for SMTP and GNU Mailutils pop3d and imap4d for the mailboxes, beside (never
# instead of) tools/mailstack's Postfix + Dovecot.
#
# Contract: fetches the servers first when $MAILSTACK2_ROOT/tree lacks them (fetch.sh:
# apt-get download + dpkg-deb -x; nothing is installed), refuses to start when an
# instance of $MAILSTACK2_DIR is running or a port is taken (rc 1), wipes and recreates
# $MAILSTACK2_DIR (only if it holds the .mailstack2 marker or is empty), makes a
# self-signed certificate (localhost, IP:127.0.0.1), one Maildir per MAILSTACK2_USERS
# login, starts Exim (SMTP port and submission with STARTTLS, smtps with implicit TLS;
# AUTH PLAIN/LOGIN only after TLS, against a password file; delivery to the Maildirs)
# and pop3d/imap4d (STLS/STARTTLS offered, implicit TLS on pop3s/imaps; USER/PASS and
# LOGIN against a passwd file read through nss_wrapper, so no system account per
# mailbox), and writes $MAILSTACK2_DIR/mailstack.env with the variable names of
# tools/mailstack (MAILSTACK_*_URL, *_PORT, CACERT, USERS, MAILDIRS, MSG_LIMIT, DIR),
# plus MAILSTACK_KIND=exim+mailutils: a test runs against either stack by loading one
# env file. Every server is stopped by its pid file (stop.sh). Needs root: Exim looks
# up its compiled-in user Debian-exim and the Maildirs belong to vmail; both system
# users are created when missing. On failure it stops what it started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"

die() { echo "mailstack2: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "start.sh must run as root (the servers drop privileges themselves)"

refuse_if_running() {
  [ -z "$(live_server "$EXIM_PID_FILE" "$EXIM")" ] || die "Exim of $D is already running"
  [ -z "$(live_server "$POP3D_PID_FILE" "$POP3D")" ] || die "pop3d of $D is already running"
  [ -z "$(live_server "$IMAP4D_PID_FILE" "$IMAP4D")" ] || die "imap4d of $D is already running"
  local port
  for port in $(all_ports); do
    if listening "$port"; then die "port $port is already in use"; fi
  done
}

fresh_dir() {
  if [ -d "$D" ] && [ ! -e "$D/.mailstack2" ] && [ -n "$(ls -A "$D")" ]; then
    die "$D exists, is not empty and is not a mailstack2 directory; refusing to wipe it"
  fi
  rm -rf "$D"
  mkdir -p "$D"/{etc,tls,mail,log,run,spool,lock}
  touch "$D/.mailstack2"
}

make_cert() {
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" >"$D/log/openssl.log" 2>&1 ||
    die "openssl failed: $(tail -n 3 "$D/log/openssl.log")"
  chmod 644 "$D/tls/cert.pem"
  chmod 600 "$D/tls/key.pem"
  cp "$D/tls/key.pem" "$D/tls/exim-key.pem"  # Exim reads it as vmail
  chown vmail:vmail "$D/tls/exim-key.pem"
  chmod 600 "$D/tls/exim-key.pem"
}

# Password file for Exim, address map, nss_wrapper passwd/group for Mailutils, Maildirs.
make_users() {
  local entry login pass addrs addr hash
  : >"$D/etc/passwords"
  : >"$D/etc/mailboxes"
  : >"$D/etc/apop.txt"
  chmod 600 "$D/etc/apop.txt"
  printf 'root:x:0:0:root:/root:/bin/sh\nvmail:x:%s:%s::/nonexistent:/usr/sbin/nologin\n' \
    "$VMAIL_UID" "$VMAIL_GID" >"$D/etc/passwd"
  printf 'root:x:0:\nvmail:x:%s:\nmail:x:8:\n' "$VMAIL_GID" >"$D/etc/group"
  MAILDIRS=""
  for entry in $MAILSTACK2_USERS; do
    IFS=: read -r login pass addrs <<<"$entry"
    [ -n "$login" ] && [ -n "$pass" ] && [ -n "$addrs" ] || die "bad MAILSTACK2_USERS entry '$login:...'"
    echo "$login: $pass" >>"$D/etc/passwords"
    echo "$login $pass" >>"$D/etc/apop.txt"
    hash="$(openssl passwd -6 "$pass")"
    echo "$login:$hash:$VMAIL_UID:$VMAIL_GID::$D/mail/$login:/usr/sbin/nologin" >>"$D/etc/passwd"
    for addr in ${addrs//,/ }; do
      echo "$addr: $login" >>"$D/etc/mailboxes"
      DOMAINS+=("${addr#*@}")
    done
    mkdir -p "$D/mail/$login"/{new,cur,tmp}
    MAILDIRS="$MAILDIRS${MAILDIRS:+ }$D/mail/$login"
  done
  chown -R vmail:vmail "$D/mail" "$D/spool"
  # pop3d's greeting carries an APOP timestamp, and libcurl then logs in with APOP:
  # the secrets go into its APOP database too (popauth, from the same package).
  LD_LIBRARY_PATH="$(tree_library_path)" "$TREE/usr/bin/popauth" -c -f "$D/etc/apop.txt" \
    -o "$D/etc/apop.db" >"$D/log/popauth.log" 2>&1 || die "popauth failed: $(cat "$D/log/popauth.log")"
  chmod 600 "$D/etc/passwords"
  chown vmail "$D/etc/passwords"  # Exim checks passwords as vmail
}

write_exim_conf() {
  local domains
  domains="$(printf '%s\n' "${DOMAINS[@]}" | sort -u | paste -sd: -)"
  cat >"$D/etc/exim.conf" <<CONF
# Exim of tools/mailstack2 (written by start.sh).
exim_path = $EXIM
keep_environment = LD_LIBRARY_PATH
exim_user = vmail
exim_group = vmail
never_users =
deliver_drop_privilege = true
spool_directory = $D/spool
log_file_path = $D/log/exim-%s.log
pid_file_path = $EXIM_PID_FILE
daemon_smtp_ports = $MAILSTACK2_SMTP_PORT : $MAILSTACK2_SUBMISSION_PORT : $MAILSTACK2_SMTPS_PORT
tls_on_connect_ports = $MAILSTACK2_SMTPS_PORT
local_interfaces = 127.0.0.1
primary_hostname = localhost
domainlist local_domains = $domains
tls_advertise_hosts = *
tls_certificate = $D/tls/cert.pem
tls_privatekey = $D/tls/exim-key.pem
message_size_limit = $MAILSTACK2_MSG_LIMIT
smtp_accept_queue_per_connection = 0
auth_advertise_hosts = \${if eq{\$tls_in_cipher}{}{}{*}}
acl_smtp_rcpt = acl_check_rcpt

begin acl
acl_check_rcpt:
  deny domains = +local_domains
       !verify = recipient
  accept domains = +local_domains
  accept authenticated = *
  deny message = relay not permitted

begin routers
mailbox:
  driver = accept
  domains = +local_domains
  condition = \${lookup{\$local_part@\$domain}lsearch{$D/etc/mailboxes}{yes}{no}}
  transport = maildir

begin transports
maildir:
  driver = appendfile
  directory = $D/mail/\${lookup{\$local_part@\$domain}lsearch{$D/etc/mailboxes}}
  maildir_format
  delivery_date_add
  envelope_to_add
  return_path_add
  user = vmail
  group = vmail
  mode = 0600

# A delivery can fail for a moment (pop3d/imap4d reading the Maildir while Exim renames
# its file from tmp/ to new/); without a rule Exim would bounce at once.
begin retry
*  *  F,2h,10s

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if eq{\$auth3}{\${lookup{\$auth2}lsearch{$D/etc/passwords}{\$value}fail}}}
  server_set_id = \$auth2
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = <| Username: | Password:
  server_condition = \${if eq{\$auth2}{\${lookup{\$auth1}lsearch{$D/etc/passwords}{\$value}fail}}}
  server_set_id = \$auth1
CONF
}

# mailutils_conf NAME PLAIN_PORT TLS_PORT EXTRA: pop3d knows the APOP database; imap4d
# offers no SASL (GSASL needs a password file of its own): IMAP LOGIN only.
mailutils_conf() {
  cat >"$D/etc/$1.conf" <<CONF
# GNU Mailutils $1 of tools/mailstack2 (written by start.sh).
logging { syslog false; };
auth { authorization system; authentication generic; };
mailbox { mailbox-type maildir; mailbox-pattern "$D/mail/\${user}"; };
mandatory-locking { enable false; lock-directory $D/lock; };
mode daemon;
foreground true;
max-children 40;
tls { ssl-certificate-file $D/tls/cert.pem; ssl-key-file $D/tls/key.pem; };
server 127.0.0.1:$2 { tls-mode ondemand; };
server 127.0.0.1:$3 { tls-mode connection; };
$4
CONF
}

# start_mailutils BINARY NAME PIDFILE: in the foreground of a background job, so $! is
# the server itself (setsid execs: a background job is no process group leader).
start_mailutils() {
  LD_LIBRARY_PATH="$(tree_library_path)" LD_PRELOAD="$NSS_WRAPPER" \
    NSS_WRAPPER_PASSWD="$D/etc/passwd" NSS_WRAPPER_GROUP="$D/etc/group" \
    setsid "$1" --config-file="$D/etc/$2.conf" </dev/null >>"$D/log/$2.log" 2>&1 &
  echo "$!" >"$3"
}

wait_ready() {
  local port i
  for port in $(all_ports); do
    for ((i = 0; i < 200; i++)); do listening "$port" && break; sleep 0.05; done
    listening "$port" || die "nothing listens on 127.0.0.1:$port"
  done
  for f in "$EXIM_PID_FILE:$EXIM" "$POP3D_PID_FILE:$POP3D" "$IMAP4D_PID_FILE:$IMAP4D"; do
    for ((i = 0; i < 100; i++)); do [ -n "$(live_server "${f%%:*}" "${f#*:}")" ] && break; sleep 0.05; done
    [ -n "$(live_server "${f%%:*}" "${f#*:}")" ] || die "no live server in ${f%%:*}"
  done
}

write_env() {
  local h=127.0.0.1 tmp="$D/mailstack.env.tmp"
  cat >"$tmp" <<ENV
MAILSTACK_KIND=exim+mailutils
MAILSTACK_DIR=$D
MAILSTACK_HOST=$h
MAILSTACK_SMTP_PORT=$MAILSTACK2_SMTP_PORT
MAILSTACK_SUBMISSION_PORT=$MAILSTACK2_SUBMISSION_PORT
MAILSTACK_SMTPS_PORT=$MAILSTACK2_SMTPS_PORT
MAILSTACK_POP3_PORT=$MAILSTACK2_POP3_PORT
MAILSTACK_POP3S_PORT=$MAILSTACK2_POP3S_PORT
MAILSTACK_IMAP_PORT=$MAILSTACK2_IMAP_PORT
MAILSTACK_IMAPS_PORT=$MAILSTACK2_IMAPS_PORT
MAILSTACK_SMTP_URL=smtp://$h:$MAILSTACK2_SMTP_PORT
MAILSTACK_SUBMISSION_URL=smtp://$h:$MAILSTACK2_SUBMISSION_PORT
MAILSTACK_SMTPS_URL=smtps://$h:$MAILSTACK2_SMTPS_PORT
MAILSTACK_POP3_URL=pop3://$h:$MAILSTACK2_POP3_PORT
MAILSTACK_POP3S_URL=pop3s://$h:$MAILSTACK2_POP3S_PORT
MAILSTACK_IMAP_URL=imap://$h:$MAILSTACK2_IMAP_PORT
MAILSTACK_IMAPS_URL=imaps://$h:$MAILSTACK2_IMAPS_PORT
MAILSTACK_CACERT=$D/tls/cert.pem
MAILSTACK_MSG_LIMIT=$MAILSTACK2_MSG_LIMIT
MAILSTACK_USERS="$MAILSTACK2_USERS"
MAILSTACK_MAILDIRS="$MAILDIRS"
ENV
  mv "$tmp" "$D/mailstack.env"
}

on_failure() {
  local rc=$?
  [ "$rc" -eq 0 ] && return
  echo "mailstack2: start failed (rc $rc); stopping what was started" >&2
  local f
  for f in "$D"/log/exim-main.log "$D"/log/exim-panic.log "$D/log/pop3d.log" "$D/log/imap4d.log"; do
    [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }
  done
  bash "$here/stop.sh" >&2 || true
  exit "$rc"
}

case "$MAILSTACK2_MSG_LIMIT" in '' | *[!0-9]*) die "MAILSTACK2_MSG_LIMIT must be a number" ;; esac
case "$MAILSTACK2_USERS" in
  *\"* | *\$* | *\\* | *\`* | *\{* | *\}*) die "MAILSTACK2_USERS must not contain \" \$ \\ \` { or }" ;;
esac
bash "$here/fetch.sh"
refuse_if_running
id vmail >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
  --shell /usr/sbin/nologin vmail
id Debian-exim >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
  --shell /usr/sbin/nologin Debian-exim
VMAIL_UID="$(id -u vmail)"
VMAIL_GID="$(id -g vmail)"
DOMAINS=()
fresh_dir
trap on_failure EXIT
make_cert
make_users
write_exim_conf
mailutils_conf pop3d "$MAILSTACK2_POP3_PORT" "$MAILSTACK2_POP3S_PORT" \
  "apop-database-file $D/etc/apop.db;"
mailutils_conf imap4d "$MAILSTACK2_IMAP_PORT" "$MAILSTACK2_IMAPS_PORT" "gsasl { enable false; };"
mkdir -p "$D/run/exim"
chown vmail:vmail "$D/log" "$D/run/exim"
LD_LIBRARY_PATH="$(tree_library_path)" "$EXIM" -C "$D/etc/exim.conf" -bd -q5s \
  >"$D/log/exim-start.log" 2>&1 || die "exim failed: $(tail -n 5 "$D/log/exim-start.log")"
start_mailutils "$POP3D" pop3d "$POP3D_PID_FILE"
start_mailutils "$IMAP4D" imap4d "$IMAP4D_PID_FILE"
wait_ready
write_env
trap - EXIT
echo "mailstack2: running in $D (env: $D/mailstack.env)"
