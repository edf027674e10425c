#!/usr/bin/env bash
# Checks formatting (clang-format) of every C++ file, then runs clang-tidy on the
# files given (default: every .cpp of the modules) against build/compile_commands.json.
# Usage: tools/lint.sh [FILE...]      rc 0 when clean
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${SQLPOST_BUILD_DIR:-$root/build}"
mapfile -t all < <(git ls-files '*.cpp' '*.h')
clang-format --dry-run --Werror "${all[@]}"
[ -f "$build/compile_commands.json" ] ||
  cmake -S . -B "$build" -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
if [ $# -gt 0 ]; then files=("$@"); else
  # platform/*_windows.cpp need <windows.h>: tools/mingw-check.sh compiles them.
  mapfile -t files < <(git ls-files 'common/*.cpp' 'platform/*_posix.cpp' 'agent/*.cpp' \
    'transport/*.cpp' 'replication/*.cpp' 'schema/*.cpp')
fi
clang-tidy -p "$build" --quiet --warnings-as-errors='*' "${files[@]}"
