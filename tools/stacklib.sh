# Process helpers shared by the test servers' scripts (tools/mailstack, mailstack2,
# ftpstack, dnsstack; sourced, not run). A server is found only through its pid file
# and checked by /proc/PID/exe before it is signalled: nothing is killed by name.

# True if the process exists and is not a zombie (kill -0 succeeds on zombies).
alive() {
  local stat rest
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  rest="${stat##*) }"
  [ "${rest%% *}" != "Z" ]
}

exe_of() { readlink "/proc/$1/exe" 2>/dev/null || true; }

# The pid recorded in a pid file (Postfix pads it with spaces), or nothing.
pid_from() {
  local pid=""
  [ -r "$1" ] && read -r pid <"$1" 2>/dev/null || true
  pid="${pid//[^0-9]/}"
  echo "$pid"
}

# Prints the pid from pid file $1 if that process is alive and runs binary $2.
live_pid() {
  local pid
  pid="$(pid_from "$1")"
  [ -n "$pid" ] && alive "$pid" && [ "$(exe_of "$pid")" = "$2" ] && echo "$pid"
  return 0
}

# All descendants of pid $1 (one pass over /proc, no procps needed).
descendants() {
  local f stat rest ppid
  for f in /proc/[0-9]*/stat; do
    stat="$(cat "$f" 2>/dev/null)" || continue
    rest="${stat##*) }"
    ppid="${rest#* }"; ppid="${ppid%% *}"
    echo "${stat%% *} $ppid"
  done | awk -v root="$1" '
    { kids[$2] = kids[$2] " " $1 }
    END { queue[0] = root; n = 1
          for (i = 0; i < n; i++) { k = split(kids[queue[i]], a, " ")
            for (j = 1; j <= k; j++) { print a[j]; queue[n++] = a[j] } } }'
}

# True if TCP port $1 is in LISTEN state on any address; read from /proc, no connect.
listening() {
  local hex
  hex="$(printf '%04X' "$1")"
  awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
                    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
