# Shared helpers of start.sh / stop.sh (sourced, not run).
DNSMASQ=/usr/sbin/dnsmasq
# The first port tried; start.sh moves up to 99 ports on while one is taken.
DNSSTACK_BASE_PORT="${DNSSTACK_BASE_PORT:-25300}"

# True if the process exists and is not a zombie (kill -0 succeeds on zombies).
alive() {
  local stat rest
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  rest="${stat##*) }"
  [ "${rest%% *}" != "Z" ]
}

exe_of() { readlink "/proc/$1/exe" 2>/dev/null || true; }

# Prints the pid of the live dnsmasq recorded in pid file $1, or nothing.
live_dnsmasq() {
  local pid=""
  [ -r "$1" ] && read -r pid <"$1" 2>/dev/null || true
  pid="${pid//[^0-9]/}"
  [ -n "$pid" ] && alive "$pid" && [ "$(exe_of "$pid")" = "$DNSMASQ" ] && echo "$pid"
  return 0
}

# True if port $1 is bound on UDP (any state) or listening on TCP; read from /proc.
port_taken() {
  local hex
  hex="$(printf '%04X' "$1")"
  awk -v p=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == p &&
                    (FILENAME ~ /udp/ || $4 == "0A") { f = 1 } END { exit !f }' \
    /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
