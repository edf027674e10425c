#!/usr/bin/env bash
# Windows check with Debian's MinGW-w64 cross compiler (run by CI, as root, without
# questions; a few minutes):
#   1. builds common/ and platform/ (its Windows implementation) and their unit
#      tests for Windows x86-64 (tools/mingw-w64.cmake, -DSQLPOST_PORTABLE_ONLY=ON);
#   2. compiles for Windows every other .cpp of the modules and tools/; a file that
#      stops at a header of a library Debian does not package for MinGW (SQLite,
#      libcurl, OpenSSL, zstd, spdlog) is reported as skipped, naming the library;
#      any other error fails the check;
#   3. runs the unit tests of step 1 under Wine (ctest with Wine as the emulator).
# tests/*.cpp are compiled too and reported, without failing the check: the test
# harness itself still uses fork/waitpid (docs/windows.md).
# Usage: tools/mingw-check.sh         rc 0 when every step passed
# Environment: SQLPOST_MINGW_BUILD_DIR (default build-mingw), SQLPOST_MINGW_NO_WINE=1
# (compile only), SQLPOST_MINGW_NO_INSTALL=1 (never run apt-get).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${SQLPOST_MINGW_BUILD_DIR:-$root/build-mingw}"
triple=x86_64-w64-mingw32
cxx="$triple-g++-posix"
started=$SECONDS

stage() { echo "== mingw-check: $* ($((SECONDS - started)) s)"; }

# --- Packages: the cross compiler, Wine, the build tools and the header-only libraries.
packages=(g++-mingw-w64-x86-64-posix cmake ninja-build doctest-dev nlohmann-json3-dev libcli11-dev)
[ "${SQLPOST_MINGW_NO_WINE:-0}" = 1 ] || packages+=(wine64)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${SQLPOST_MINGW_NO_INSTALL:-0}" = 1 ]; then
    echo "mingw-check: missing Debian packages: ${missing[*]}" >&2
    exit 1
  fi
  stage "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Header-only libraries from /usr/include, one folder each: the cross compiler must
# not see the rest of /usr/include (glibc's headers).
shim="$out/include-shim"
mkdir -p "$shim"
for h in doctest nlohmann CLI; do ln -sfn "/usr/include/$h" "$shim/$h"; done
# Headers CMake generates (agent/version.h from project(VERSION)).
generated="$out/generated"
mkdir -p "$generated/agent"
version="$(sed -n 's/^project(sqlpost VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")"
sed "s/@PROJECT_VERSION@/$version/" "$root/agent/version.h.in" >"$generated/agent/version.h"

# --- 1. common/ + platform/ and their tests, for Windows.
stage "1. cmake build of common/, platform/ and their tests for Windows"
wine="$(command -v wine64 || true)"
[ -n "$wine" ] || [ ! -x /usr/lib/wine/wine64 ] || wine=/usr/lib/wine/wine64
cmake -S . -B "$out/portable" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$root/tools/mingw-w64.cmake" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQLPOST_PORTABLE_ONLY=ON -DSQLPOST_WERROR=ON \
  -DSQLPOST_DOCTEST_INCLUDE="$shim" ${wine:+-DCMAKE_CROSSCOMPILING_EMULATOR="$wine"} >/dev/null
cmake --build "$out/portable" -j "$(nproc)"
built=$(cd "$out/portable" && find . -path ./CMakeFiles -prune -o \( -name '*.exe' -o -name '*.a' \) \
  -print | sort | tr '\n' ' ')
echo "built for Windows: $built"

# --- 2. Every other translation unit (common/ and platform/ were built in 1.), on its own.
stage "2. compiling every other translation unit for Windows"
flags=(-std=c++20 -I "$root" -I "$generated" -isystem "$shim" -Wall -Wextra -Wpedantic -Wshadow -Wconversion
       -Wno-sign-conversion -Wno-maybe-uninitialized -Werror -O0 -c -o /dev/null)
# A missing header -> the library Debian does not package for MinGW.
library_of() {
  case "$1" in
    sqlite3.h) echo SQLite ;; curl/*) echo libcurl ;; openssl/*) echo OpenSSL ;;
    zstd.h) echo zstd ;; spdlog/*) echo spdlog ;; *) echo "" ;;
  esac
}
compiled=() skipped=() failed=() test_notes=()
check_unit() {  # file, is_test
  local file=$1 log header library
  log="$(mktemp)"
  if "$cxx" "${flags[@]}" "$file" 2>"$log"; then
    rm -f "$log"; echo compiled; return
  fi
  header=$(sed -n 's/.*fatal error: \([^:]*\): No such file or directory.*/\1/p' "$log" | head -1)
  library=$(library_of "$header")
  if [ -n "$library" ]; then
    echo "skipped (needs $library: $header)"
  else
    echo "FAILED"; sed 's/^/    /' "$log" | head -20 >&2
  fi
  rm -f "$log"
}
mapfile -t units < <(git ls-files 'transport/*.cpp' 'schema/*.cpp' 'replication/*.cpp' \
  'agent/*.cpp' 'tools/*.cpp')
for file in "${units[@]}"; do
  verdict=$(check_unit "$file")
  printf '  %-34s %s\n' "$file" "$verdict"
  case "$verdict" in
    compiled) compiled+=("$file") ;; skipped*) skipped+=("$file") ;; *) failed+=("$file") ;;
  esac
done
echo "tests/ (reported only):"
mapfile -t tests < <(git ls-files 'tests/*.cpp')
for file in "${tests[@]}"; do
  verdict=$(check_unit "$file" 2>/dev/null)
  [ "$verdict" != FAILED ] || verdict="does not compile for Windows (POSIX-only test code)"
  printf '  %-34s %s\n' "$file" "$verdict"
done

# --- 3. The unit tests under Wine.
ran="no (SQLPOST_MINGW_NO_WINE=1 or no Wine)"
if [ -n "$wine" ] && [ "${SQLPOST_MINGW_NO_WINE:-0}" != 1 ]; then
  stage "3. running the Windows unit tests under Wine"
  WINEPREFIX="$(mktemp -d /tmp/sqlpost-wine.XXXXXX)"
  export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  wineserver="$(dirname "$wine")/wineserver64"
  [ -x "$wineserver" ] || wineserver=wineserver
  trap '"$wineserver" -k 2>/dev/null || true; rm -rf "$WINEPREFIX"' EXIT
  ctest --test-dir "$out/portable" --output-on-failure --timeout 600
  ran="common_test.exe, platform_test.exe under $("$wine" --version 2>/dev/null || echo wine)"
fi

stage "done"
echo "compiled for Windows: ${#compiled[@]} translation units; skipped for a missing library:" \
  "${#skipped[@]}; failed: ${#failed[@]}"
echo "ran under Wine: $ran"
[ ${#failed[@]} -eq 0 ] || { echo "mingw-check: FAILED: ${failed[*]}" >&2; exit 1; }
