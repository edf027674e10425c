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
  clang clang-format clang-tidy ccache
  dpkg-dev file man-db systemd
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all build dependencies present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
