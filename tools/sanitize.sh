#!/usr/bin/env bash
# Builds sqlpost and its tests with AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/) and runs every test that needs no mail server; any report fails.
# Usage: tools/sanitize.sh        (after tools/install-deps.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${SQLPOST_ASAN_BUILD_DIR:-$root/build-asan}"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSQLPOST_WERROR=ON \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  "${launcher[@]}"
cmake --build "$build" -j "$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
SQLPOST_SKIP_MAIL=1 ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 1800 \
  -E '^(mail_link_test|e2e_mail_test|demo_mail)$'
