# Shared helpers of start.sh / stop.sh (sourced, not run).
. "$(dirname "${BASH_SOURCE[0]}")/../stacklib.sh"
DNSMASQ=/usr/sbin/dnsmasq
# The first port tried; start.sh moves up to 99 ports on while one is taken.
DNSSTACK_BASE_PORT="${DNSSTACK_BASE_PORT:-25300}"

# Prints the pid of the live dnsmasq recorded in pid file $1, or nothing.
live_dnsmasq() { live_pid "$1" "$DNSMASQ"; }

# True if port $1 is bound on UDP (any state) or listening on TCP; read from /proc.
port_taken() {
  local hex
  hex="$(printf '%04X' "$1")"
  awk -v p=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == p &&
                    (FILENAME ~ /udp/ || $4 == "0A") { f = 1 } END { exit !f }' \
    /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
