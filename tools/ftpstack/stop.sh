#!/usr/bin/env bash
# Stops the vsftpd started by start.sh. Finds it only by $FTPSTACK_DIR/run/vsftpd.pid
# and checks /proc/PID/exe before signalling; never kills by name. Its session
# processes (children) are ended too. Safe when nothing runs (rc 0). Leaves
# $FTPSTACK_DIR in place (logs).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"

pid="$(live_vsftpd)"
if [ -n "$pid" ]; then
  kids="$(descendants "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid" && [ "$(exe_of "$pid")" = "$VSFTPD" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  for k in $kids; do
    if alive "$k" && [ "$(exe_of "$k")" = "$VSFTPD" ]; then kill -TERM "$k" 2>/dev/null || true; fi
  done
  for k in $kids; do
    for ((i = 0; i < 30; i++)); do alive "$k" || break; sleep 0.1; done
    if alive "$k" && [ "$(exe_of "$k")" = "$VSFTPD" ]; then kill -KILL "$k" 2>/dev/null || true; fi
  done
fi
rm -f "$PID_FILE"
echo "ftpstack: stopped ($D)"
exit 0
