#!/usr/bin/env bash
# The whole COSMOS test suite: setup, a RelWithDebInfo build (g++) running
# every ctest test (unit, integration, crash, fuzz replay), then an
# ASan+UBSan build (clang) running the unit tests and every libFuzzer target
# for a bounded time. Ends with one "N passed, N failed" line.
#
#   COSMOS_JOBS=N               parallel build/test jobs (default: nproc)
#   COSMOS_SKIP_SANITIZERS=1    skip the sanitizer + libFuzzer stage
#   COSMOS_TEST_FILTER=regex    only ctest tests matching regex (-R)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${COSMOS_JOBS:-$(nproc)}
FILTER=()
[ -n "${COSMOS_TEST_FILTER:-}" ] && FILTER=(-R "$COSMOS_TEST_FILTER")

scripts/setup.sh || { echo "test: setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
start=$(date +%s)

# run_ctest DIR ARGS...: runs ctest, adds its totals to passed/failed.
run_ctest() {
  local dir=$1; shift
  local log
  log=$(mktemp)
  ctest --test-dir "$dir" -j"$JOBS" --output-on-failure --no-tests=error "$@" 2>&1 | tee "$log"
  local line total nfail
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "test: ctest in $dir printed no summary"
    failed=$((failed + 1))
  else
    nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + total - nfail))
    failed=$((failed + nfail))
  fi
  rm -f "$log"
}

echo "=== stage 1: RelWithDebInfo build (g++), all tests ==="
if cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
   cmake --build build -j"$JOBS"; then
  run_ctest build "${FILTER[@]}"
else
  echo "test: stage 1 build failed"
  failed=$((failed + 1))
fi

if [ "${COSMOS_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "=== stage 2: ASan+UBSan build (clang), unit tests + libFuzzer targets ==="
  if CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        -DCOSMOS_SANITIZE=address,undefined -DCOSMOS_FUZZ=ON -DCOSMOS_BUILD_BENCH=OFF >/dev/null &&
     cmake --build build-asan -j"$JOBS" --target unit_tests fuzz_targets; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      run_ctest build-asan -L 'unit|fuzz' "${FILTER[@]}"
  else
    echo "test: stage 2 build failed"
    failed=$((failed + 1))
  fi
else
  echo "=== stage 2 skipped (COSMOS_SKIP_SANITIZERS=1) ==="
fi

echo "test: finished in $(( $(date +%s) - start ))s"
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
