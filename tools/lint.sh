#!/usr/bin/env bash
# Checks formatting (clang-format) of every C++ file, then runs clang-tidy (every
# warning is an error) on the files given, by default every .cpp of the modules
# (agent, common, platform, replication, schema, transport), tests/ and tools/ that
# the build compiles (build/compile_commands.json). --modules leaves out tests/ and
# tools/ (quicker while working on a module); --all is the default, kept for callers.
# Usage: tools/lint.sh [--all | --modules | FILE...]      rc 0 when clean
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${SQLPOST_BUILD_DIR:-$root/build}"
mapfile -t all < <(git ls-files '*.cpp' '*.h')
clang-format --dry-run --Werror "${all[@]}"
echo "lint: clang-format clean (${#all[@]} files)"
[ -f "$build/compile_commands.json" ] ||
  cmake -S . -B "$build" -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
scope=(agent common platform replication schema transport tests tools)
case "${1:-}" in
  --all) shift ;;
  --modules) scope=(agent common platform replication schema transport) && shift ;;
esac
if [ $# -gt 0 ]; then files=("$@"); else
  mapfile -t candidates < <(git ls-files "${scope[@]/%//*.cpp}")
  files=()
  for f in "${candidates[@]}"; do
    # Only what this build compiles (the fuzz drivers need clang's libFuzzer build).
    if grep -qF "\"$root/$f\"" "$build/compile_commands.json"; then files+=("$f"); fi
  done
fi
# One clang-tidy per file, as many at once as there are cores; all output kept.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rc=0
printf '%s\n' "${files[@]}" |
  xargs -P "$(nproc)" -n 1 clang-tidy -p "$build" --quiet --warnings-as-errors='*' \
    >"$log" 2>&1 || rc=$?
grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers' "$log" || true
if [ "$rc" -ne 0 ]; then
  echo "lint: clang-tidy found problems (see above)"
  exit 1
fi
echo "lint: clang-tidy clean (${#files[@]} files)"
