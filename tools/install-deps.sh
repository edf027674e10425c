#!/usr/bin/env bash
# Installs the Debian packages sqlpost needs to build and test, when missing.
# Non-interactive; needs root (or sudo). Safe to run repeatedly.
# dpkg-dev (dpkg-shlibdeps, for the .deb's dependencies), file, man-db and
# systemd (systemd-analyze) are used by the packaging tests.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libsqlite3-dev sqlite3
  libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libcli11-dev doctest-dev
  libzstd-dev libspdlog-dev
  clang clang-format clang-tidy ccache libclang-rt-14-dev time
  dpkg-dev file man-db systemd
  dnsmasq-base  # direct send's end-to-end test: MX records on 127.0.0.1 (tools/dnsstack)
  vsftpd  # the FTP link's end-to-end test (tools/ftpstack)
  python3  # the OAuth2 token introspection endpoint of tools/mailstack (oauth_introspect.py)
  chromium fonts-dejavu-core  # renders `sqlpost report`'s HTML page in a test (headless)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The second test mail stack's servers (Exim, GNU Mailutils) conflict with Postfix as
# packages: their .debs are downloaded and unpacked under MAILSTACK2_ROOT, not installed.
fetch_mailstack2() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo bash "$(dirname "${BASH_SOURCE[0]}")/mailstack2/fetch.sh"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all build dependencies present"
  fetch_mailstack2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# Keep apt from starting system services (vsftpd on port 21); the tests start their own.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
rc=0
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null || rc=$?
if [ "$created_policy" -eq 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
[ "$rc" -ne 0 ] || fetch_mailstack2 || rc=$?
exit "$rc"
