#!/usr/bin/env bash
# tools/fuzz.sh [RUNS] — builds the libFuzzer drivers with clang + ASan/UBSan in
# build-fuzz/ and runs each for RUNS inputs (default 500000) from a fixed seed
# (SQLPOST_FUZZ_SEED, default 1): fuzz-decode (hostile mail: codec, bounded zstd)
# and fuzz-apply (authenticated but hostile payloads: bounded decoding, then apply
# to an in-memory site, seeded from real messages). A fixed seed and a count, not
# a time, make the run the same on every machine: CI cannot pass or fail by the
# machine's speed. Explore with a different seed and more runs, e.g.
#   SQLPOST_FUZZ_SEED=$RANDOM tools/fuzz.sh 5000000
# Exits non-zero on a finding, printing the end of the driver's log (the crashing
# input is left in build-fuzz/findings/; add it to tests/fuzz-regressions/).
set -euo pipefail
runs="${1:-500000}"
seed="${SQLPOST_FUZZ_SEED:-1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${SQLPOST_FUZZ_BUILD:-$root/build-fuzz}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DSQLPOST_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz-decode fuzz-apply -j"${SQLPOST_FUZZ_JOBS:-2}"
# The same starting corpus everywhere: the seeds the driver writes, and the inputs
# that once were findings (tests/fuzz-regressions/DRIVER/, replayed first).
rm -rf "$build/corpus"
mkdir -p "$build/corpus/decode" "$build/corpus/apply" "$build/findings"
SQLPOST_FUZZ_SEEDS="$build/corpus/apply" "$build/tools/fuzz-apply" -runs=0 >/dev/null 2>&1 || true
status=0
for driver in decode apply; do
  echo "fuzz-$driver: $runs runs from seed $seed"
  regressions="$root/tests/fuzz-regressions/$driver"
  [ -d "$regressions" ] || regressions=""
  if ! "$build/tools/fuzz-$driver" -runs="$runs" -seed="$seed" -max_len=65536 -rss_limit_mb=2048 -timeout=60 \
      -print_final_stats=1 -artifact_prefix="$build/findings/$driver-" \
      "$build/corpus/$driver" $regressions 2>"$build/fuzz-$driver.log"; then
    echo "fuzz-$driver: FINDING, see $build/fuzz-$driver.log and $build/findings/" >&2
    tail -n 60 "$build/fuzz-$driver.log" >&2
    status=1
  fi
  grep -E '^stat::number_of_executed_units' "$build/fuzz-$driver.log" || true
done
exit "$status"
