#!/usr/bin/env bash
# Installs dependencies, builds sqlpost and runs every test with ctest.
# Usage: tools/test.sh            (from anywhere inside the checkout)
# The mail tests need the throw-away Postfix + Dovecot of tools/mailstack: started
# here when they are not running, and stopped at the end only if started here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/install-deps.sh

build="${SQLPOST_BUILD_DIR:-$root/build}"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQLPOST_WERROR=ON "${launcher[@]}"
cmake --build "$build" -j "$(nproc)"

if [ "${SQLPOST_SKIP_MAIL:-0}" != "1" ]; then
  . tools/mailstack/ensure.sh
  trap mailstack_release EXIT
fi

# The second real mail stack (tools/mailstack2: Exim + GNU Mailutils, unpacked from
# .debs, never installed); e2e_mail_stack2 is skipped without it. Its mailstack.env is
# read by that test alone: the environment keeps tools/mailstack's.
if [ "${SQLPOST_SKIP_MAIL:-0}" != "1" ] && [ "${SQLPOST_SKIP_MAIL2:-0}" != "1" ]; then
  bash tools/mailstack2/stop.sh >/dev/null && bash tools/mailstack2/start.sh
  trap "bash tools/mailstack2/stop.sh; $(trap -p EXIT | cut -d"'" -f2)" EXIT  # keeps the others
fi

# The FTP link's end-to-end test needs a vsftpd (tools/ftpstack); it is skipped without.
if [ -x tools/ftpstack/start.sh ] && [ "${SQLPOST_SKIP_FTP:-0}" != "1" ]; then
  bash tools/ftpstack/stop.sh >/dev/null && bash tools/ftpstack/start.sh
  trap "bash tools/ftpstack/stop.sh; $(trap -p EXIT | cut -d"'" -f2)" EXIT  # keeps the mail one
  set -a; . "${FTPSTACK_DIR:-/tmp/ftpstack}/ftpstack.env"; set +a
fi

ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 900
