#!/usr/bin/env bash
# Stops the dnsmasq started by start.sh DIR. Finds it only by DIR/dnsmasq.pid and
# checks /proc/PID/exe before signalling; never kills by name. Waits (bounded) until
# it is gone. Safe when nothing runs (rc 0). Leaves DIR in place (logs).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"
[ $# -eq 1 ] || { echo "usage: stop.sh DIR" >&2; exit 2; }
pid_file="$1/dnsmasq.pid"
pid="$(live_dnsmasq "$pid_file")"
if [ -n "$pid" ]; then
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.05; done
  if alive "$pid" && [ "$(exe_of "$pid")" = "$DNSMASQ" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
fi
rm -f "$pid_file"
exit 0
