#!/usr/bin/env bash
# tools/fuzz.sh [SECONDS] — builds the libFuzzer drivers with clang + ASan/UBSan in
# build-fuzz/ and runs each for SECONDS (default 60): fuzz-decode (hostile mail:
# codec, bounded zstd) and fuzz-apply (authenticated but hostile payloads: bounded
# decoding, then apply to an in-memory site, seeded from real messages).
# Exits non-zero on a finding (the crashing input is left in build-fuzz/findings/).
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${SQLPOST_FUZZ_BUILD:-$root/build-fuzz}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DSQLPOST_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz-decode fuzz-apply -j"${SQLPOST_FUZZ_JOBS:-2}"
mkdir -p "$build/corpus/decode" "$build/corpus/apply" "$build/findings"
SQLPOST_FUZZ_SEEDS="$build/corpus/apply" "$build/tools/fuzz-apply" -runs=0 >/dev/null 2>&1 || true
status=0
for driver in decode apply; do
  echo "fuzz-$driver: ${seconds}s"
  if ! "$build/tools/fuzz-$driver" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/findings/$driver-" \
      "$build/corpus/$driver" 2>"$build/fuzz-$driver.log"; then
    echo "fuzz-$driver: FINDING, see $build/fuzz-$driver.log and $build/findings/" >&2
    status=1
  fi
  grep -E '^stat::number_of_executed_units' "$build/fuzz-$driver.log" || true
done
exit "$status"
