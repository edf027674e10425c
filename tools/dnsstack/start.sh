#!/usr/bin/env bash
# Starts a throw-away DNS server (dnsmasq) on 127.0.0.1 for the direct-send tests.
#
# Usage: start.sh DIR [dnsmasq options...]     e.g. --mx-host=hq.test,localhost,10
#                                                   --host-record=localhost,127.0.0.1
# Contract: installs dnsmasq-base when missing (apt-get, non-interactive; needs root),
# refuses to start when DIR/dnsmasq.pid names a live dnsmasq (rc 1), picks the first
# port from $DNSSTACK_BASE_PORT (25300) on that is free on UDP and TCP, and runs
# dnsmasq answering only from its options: no upstream servers (--no-resolv), no
# /etc/hosts (--no-hosts), on 127.0.0.1 only, pid file DIR/dnsmasq.pid, log (queries
# included) DIR/dnsmasq.log. Waits (bounded, by pid file and port, never a fixed
# sleep) until it serves, then prints "127.0.0.1:PORT" and writes it to DIR/address.
# If another program takes the port between the check and dnsmasq's bind, the next
# port is tried (20 times at most). Stop with stop.sh DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"

die() { echo "dnsstack: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: start.sh DIR [dnsmasq options...]"
dir="$1"; shift
pid_file="$dir/dnsmasq.pid"

install_dnsmasq() {
  [ -x "$DNSMASQ" ] && return 0
  [ "$(id -u)" -eq 0 ] || die "dnsmasq is missing; install dnsmasq-base (needs root)"
  echo "dnsstack: installing dnsmasq-base (log: /tmp/dnsstack-apt.log)" >&2
  {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
        --no-install-recommends dnsmasq-base
  } </dev/null >/tmp/dnsstack-apt.log 2>&1 || { tail -n 20 /tmp/dnsstack-apt.log >&2; die "apt-get failed"; }
}

# Waits up to 5 s until the dnsmasq of $pid_file is alive and bound to port $1.
wait_serving() {
  local i pid
  for ((i = 0; i < 100; i++)); do
    pid="$(live_dnsmasq "$pid_file")"
    if [ -n "$pid" ] && port_taken "$1"; then return 0; fi
    sleep 0.05
  done
  return 1
}

install_dnsmasq
mkdir -p "$dir"
[ -z "$(live_dnsmasq "$pid_file")" ] || die "the dnsmasq of $dir is already running"
port=$DNSSTACK_BASE_PORT
for ((attempt = 0; attempt < 20; attempt++)); do
  while port_taken "$port"; do
    port=$((port + 1))
    [ "$port" -lt $((DNSSTACK_BASE_PORT + 100)) ] || die "no free port from $DNSSTACK_BASE_PORT on"
  done
  rm -f "$pid_file"
  # dnsmasq binds its sockets before it forks into the background: rc 0 = bound.
  if "$DNSMASQ" --no-resolv --no-hosts --port="$port" --listen-address=127.0.0.1 \
    --bind-interfaces --pid-file="$pid_file" --log-facility="$dir/dnsmasq.log" --log-queries \
    "$@" 2>>"$dir/dnsmasq.err"; then
    wait_serving "$port" || die "dnsmasq started but does not serve on port $port (see $dir)"
    echo "127.0.0.1:$port" >"$dir/address"
    echo "127.0.0.1:$port"
    exit 0
  fi
  grep -q "Address already in use" "$dir/dnsmasq.err" 2>/dev/null || {
    cat "$dir/dnsmasq.err" >&2; die "dnsmasq did not start"; }
  port=$((port + 1))
done
die "no port could be bound after 20 attempts"
