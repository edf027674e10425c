# Shared settings and helpers of start.sh / stop.sh (sourced, not run).
# Every setting can be overridden from the environment.
FTPSTACK_DIR="${FTPSTACK_DIR:-/tmp/ftpstack}"
FTPSTACK_PORT="${FTPSTACK_PORT:-2121}"
# Passive data connections use this port range (inclusive).
FTPSTACK_PASV_MIN="${FTPSTACK_PASV_MIN:-2130}"
FTPSTACK_PASV_MAX="${FTPSTACK_PASV_MAX:-2139}"
# The one FTP account: a system user (no shell) whose files live in $FTPSTACK_DIR/root.
FTPSTACK_USER="${FTPSTACK_USER:-sqlpostftp}"
FTPSTACK_PASSWORD="${FTPSTACK_PASSWORD:-ftp-secret}"

D="$FTPSTACK_DIR"
PID_FILE="$D/run/vsftpd.pid"
VSFTPD=/usr/sbin/vsftpd
# vsftpd authenticates through PAM: this service checks the system password only.
PAM_SERVICE=sqlpost-ftpstack

# True if the process exists and is not a zombie (kill -0 succeeds on zombies).
alive() {
  local stat rest
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  rest="${stat##*) }"
  [ "${rest%% *}" != "Z" ]
}

exe_of() { readlink "/proc/$1/exe" 2>/dev/null || true; }

# Prints the pid of the live vsftpd recorded in $PID_FILE, or nothing.
live_vsftpd() {
  local pid=""
  [ -r "$PID_FILE" ] && read -r pid <"$PID_FILE" 2>/dev/null || true
  pid="${pid//[^0-9]/}"
  [ -n "$pid" ] && alive "$pid" && [ "$(exe_of "$pid")" = "$VSFTPD" ] && echo "$pid"
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

# True if port $1 is in LISTEN state; read from /proc, no connect.
listening() {
  local hex
  hex="$(printf '%04X' "$1")"
  awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
                    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
