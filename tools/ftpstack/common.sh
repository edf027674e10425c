# Shared settings and helpers of start.sh / stop.sh (sourced, not run).
# Every setting can be overridden from the environment.
. "$(dirname "${BASH_SOURCE[0]}")/../stacklib.sh"
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

# Prints the pid of the live vsftpd recorded in $PID_FILE, or nothing.
live_vsftpd() { live_pid "$PID_FILE" "$VSFTPD"; }
