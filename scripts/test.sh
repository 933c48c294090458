#!/usr/bin/env bash
# The whole COSMOS test suite: setup, a RelWithDebInfo build (g++) running
# every ctest test (unit, integration, crash, fuzz replay), then an
# ASan+UBSan build (clang) running the unit tests, every libFuzzer target
# for a bounded time, and the cosmos-kv integration tests (kv_cli_test). Names every skipped test, then ends with one
# "N passed, N failed, N skipped" line (a skipped test is never a pass).
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

scripts/setup.sh || { echo "test: setup failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

passed=0
failed=0
skipped=0
skipped_names=()
start=$(date +%s)

# run_ctest DIR ARGS...: runs ctest, adds its outcomes to passed/failed/skipped.
# The counts come from ctest's JUnit report (scripts/ctest_summary.py): a test
# that skipped itself (GTEST_SKIP, e.g. "needs root") or is disabled counts as
# skipped, never as passed (ctest's own "N% tests passed" line counts skips as
# passes).
run_ctest() {
  local dir=$1; shift
  local report summary counts rc
  report=$(mktemp --suffix=.xml)
  ctest --test-dir "$dir" -j"$JOBS" --output-on-failure --no-tests=error \
    --output-junit "$report" "$@" 2>&1
  rc=$?
  if ! summary=$(python3 scripts/ctest_summary.py "$report"); then
    echo "test: ctest in $dir wrote no readable report"
    failed=$((failed + 1))
    rm -f "$report"
    return
  fi
  rm -f "$report"
  counts=$(tail -n 1 <<<"$summary")
  read -r _ p f s <<<"$counts"
  # ctest failed without a failing test (no tests matched, a timeout of
  # ctest itself, ...): that is one failure, not a clean run.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "test: ctest in $dir exited with $rc but reported no failing test"
    f=1
  fi
  echo "test: $dir: ${p} passed, ${f} failed, ${s} skipped"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  while IFS= read -r line; do
    [ -n "$line" ] && skipped_names+=("$dir: ${line#skipped: }")
  done < <(grep '^skipped: ' <<<"$summary")
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
  echo "=== stage 2: ASan+UBSan build (clang), unit tests + libFuzzer targets + kv_cli_test ==="
  if CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        -DCOSMOS_SANITIZE=address,undefined -DCOSMOS_FUZZ=ON -DCOSMOS_BUILD_BENCH=OFF >/dev/null &&
     cmake --build build-asan -j"$JOBS" --target unit_tests fuzz_targets cosmos-kv kv_cli_test; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run_ctest build-asan -L 'unit|fuzz' "${FILTER[@]}"
    # A reduced integration set under the sanitizers: the real cosmos-kv
    # binary (sanitized too) driven by redis-cli and hostile RESP streams.
    if [ ${#FILTER[@]} -eq 0 ]; then
      run_ctest build-asan -L integration -R '^KvCliTest[.]'
    fi
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    echo "test: stage 2 build failed"
    failed=$((failed + 1))
  fi
else
  echo "=== stage 2 skipped (COSMOS_SKIP_SANITIZERS=1) ==="
fi

echo "test: finished in $(( $(date +%s) - start ))s"
if [ "$skipped" -gt 0 ]; then
  echo "test: skipped tests (not counted as passed):"
  printf '  %s\n' "${skipped_names[@]}"
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ]
