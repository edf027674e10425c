#!/usr/bin/env bash
# Starts a throw-away vsftpd on 127.0.0.1 (high ports only) for the FTP link tests.
#
# Contract: installs vsftpd when missing (apt-get, non-interactive; the system vsftpd
# is never started), refuses to start when the instance of $FTPSTACK_DIR runs or a
# port is taken (rc 1), wipes and recreates $FTPSTACK_DIR (default /tmp/ftpstack;
# only if it holds the .ftpstack marker or is empty), makes a self-signed certificate
# (localhost, IP:127.0.0.1), creates the FTP account (a system user without a shell;
# its password is set on every start) chrooted to $FTPSTACK_DIR/root, starts vsftpd
# in the foreground mode under its own pid file ($FTPSTACK_DIR/run/vsftpd.pid) and
# writes $FTPSTACK_DIR/ftpstack.env (FTPSTACK_HOST, PORT, USER, PASSWORD, CACERT,
# ROOT). Writes outside $FTPSTACK_DIR: the system user and /etc/pam.d/sqlpost-ftpstack.
# Needs root. Settings (environment): see common.sh. Stop with stop.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"

die() { echo "ftpstack: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "start.sh must run as root (vsftpd drops privileges itself)"

install_vsftpd() {
  dpkg-query -W -f='${Status}' vsftpd 2>/dev/null | grep -q "install ok installed" && return 0
  echo "ftpstack: installing vsftpd (log: /tmp/ftpstack-apt.log)"
  local created_policy=0 rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # keeps apt from starting the system vsftpd
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  {
    DEBIAN_FRONTEND=noninteractive apt-get update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends vsftpd
  } </dev/null >/tmp/ftpstack-apt.log 2>&1 || rc=$?
  [ "$created_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || { tail -n 20 /tmp/ftpstack-apt.log >&2; die "apt-get failed (rc $rc)"; }
}

refuse_if_running() {
  [ -z "$(live_vsftpd)" ] || die "vsftpd of $D is already running (stop it with stop.sh)"
  local port
  for port in "$FTPSTACK_PORT" $(seq "$FTPSTACK_PASV_MIN" "$FTPSTACK_PASV_MAX"); do
    if listening "$port"; then die "port $port is already in use"; fi
  done
}

fresh_dir() {
  if [ -d "$D" ] && [ ! -e "$D/.ftpstack" ] && [ -n "$(ls -A "$D")" ]; then
    die "$D exists, is not empty and is not an ftpstack directory; refusing to wipe it"
  fi
  rm -rf "$D"
  mkdir -p "$D"/{etc,tls,log,run,empty,root}
  touch "$D/.ftpstack"
  chmod 755 "$D" "$D/empty"
}

make_cert() {
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" >"$D/log/openssl.log" 2>&1 ||
    die "openssl failed: $(tail -n 3 "$D/log/openssl.log")"
  chmod 644 "$D/tls/cert.pem"
  chmod 600 "$D/tls/key.pem"
}

make_account() {
  # Home "/" : vsftpd enters the home directory before local_root.
  id "$FTPSTACK_USER" >/dev/null 2>&1 || useradd --system --no-create-home \
    --home-dir / --shell /usr/sbin/nologin "$FTPSTACK_USER"
  usermod --home / "$FTPSTACK_USER" 2>/dev/null || true
  echo "$FTPSTACK_USER:$FTPSTACK_PASSWORD" | chpasswd
  chown "$FTPSTACK_USER:" "$D/root"
  chmod 700 "$D/root"
  echo "$FTPSTACK_USER" >"$D/etc/user_list"
  printf 'auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_permit.so\n' \
    >"/etc/pam.d/$PAM_SERVICE"
}

write_config() {
  sed -e "s|@D@|$D|g" -e "s|@PORT@|$FTPSTACK_PORT|g" -e "s|@PAM_SERVICE@|$PAM_SERVICE|g" \
    -e "s|@PASV_MIN@|$FTPSTACK_PASV_MIN|g" -e "s|@PASV_MAX@|$FTPSTACK_PASV_MAX|g" \
    "$here/vsftpd.conf.in" >"$D/etc/vsftpd.conf"
  if grep -v '^[[:space:]]*#' "$D/etc/vsftpd.conf" | grep -q '@[A-Z_]*@'; then
    die "unfilled placeholder in $D/etc/vsftpd.conf"
  fi
  chmod 600 "$D/etc/vsftpd.conf"  # vsftpd refuses a config file not owned by root
}

write_env() {
  cat >"$D/ftpstack.env.tmp" <<ENV
FTPSTACK_DIR=$D
FTPSTACK_HOST=127.0.0.1
FTPSTACK_PORT=$FTPSTACK_PORT
FTPSTACK_USER=$FTPSTACK_USER
FTPSTACK_PASSWORD=$FTPSTACK_PASSWORD
FTPSTACK_CACERT=$D/tls/cert.pem
FTPSTACK_ROOT=$D/root
ENV
  mv "$D/ftpstack.env.tmp" "$D/ftpstack.env"
}

on_failure() {
  local rc=$?
  [ "$rc" -eq 0 ] && return
  echo "ftpstack: start failed (rc $rc); stopping what was started" >&2
  [ -f "$D/log/vsftpd.out" ] && { echo "--- tail $D/log/vsftpd.out" >&2; tail -n 15 "$D/log/vsftpd.out" >&2; }
  bash "$here/stop.sh" >&2 || true
  exit "$rc"
}

case "$FTPSTACK_USER$FTPSTACK_PASSWORD" in *[!A-Za-z0-9._-]*) die "FTPSTACK_USER/PASSWORD: only [A-Za-z0-9._-]" ;; esac
install_vsftpd
refuse_if_running
fresh_dir
trap on_failure EXIT
make_cert
make_account
write_config
# background=NO: vsftpd stays the process started here, so $! is its pid.
setsid "$VSFTPD" "$D/etc/vsftpd.conf" </dev/null >"$D/log/vsftpd.out" 2>&1 &
echo $! >"$PID_FILE"
for ((i = 0; i < 100; i++)); do listening "$FTPSTACK_PORT" && break; sleep 0.05; done
listening "$FTPSTACK_PORT" || die "vsftpd does not listen on 127.0.0.1:$FTPSTACK_PORT"
[ -n "$(live_vsftpd)" ] || die "vsftpd exited: $(tail -n 5 "$D/log/vsftpd.out")"
write_env
trap - EXIT
echo "ftpstack: running in $D (env: $D/ftpstack.env)"
