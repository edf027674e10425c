#!/usr/bin/env bash
# Installs dependencies, builds sqlpost and runs every test with ctest.
# Usage: tools/test.sh            (from anywhere inside the checkout)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/install-deps.sh

build="${SQLPOST_BUILD_DIR:-$root/build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQLPOST_WERROR=ON
cmake --build "$build" -j "$(nproc)"

# End-to-end tests against real mail servers run when the harness exists.
if [ -x tools/mailstack/start.sh ] && [ "${SQLPOST_SKIP_MAIL:-0}" != "1" ]; then
  bash tools/mailstack/stop.sh >/dev/null  # a leftover instance of an interrupted run
  bash tools/mailstack/start.sh
  trap 'bash tools/mailstack/stop.sh' EXIT
  set -a; . "${MAILSTACK_DIR:-/tmp/mailstack}/mailstack.env"; set +a
fi

# The FTP link's end-to-end test needs a vsftpd (tools/ftpstack); it is skipped without.
if [ -x tools/ftpstack/start.sh ] && [ "${SQLPOST_SKIP_FTP:-0}" != "1" ]; then
  bash tools/ftpstack/stop.sh >/dev/null && bash tools/ftpstack/start.sh
  trap "bash tools/ftpstack/stop.sh; $(trap -p EXIT | cut -d"'" -f2)" EXIT  # keeps the mail one
  set -a; . "${FTPSTACK_DIR:-/tmp/ftpstack}/ftpstack.env"; set +a
fi

ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 900
