#!/usr/bin/env bash
# Soak test of the remote persistent-memory service: the SIGKILL crash test
# (tests/integration/rpm_crash_test.cc) with many more kills than CI runs.
#   scripts/soak_rpm.sh [KILLS]      (default 1000; builds build-rpm if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-1000}
BUILD=${BUILD_DIR:-build-rpm}
cmake -S . -B "$BUILD" -G Ninja >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target rpm_crash_test cosmosd >/dev/null
# The test stops early when the log region fills up; run rounds of 250 kills
# (each on a fresh pool) until KILLS are done.
done_kills=0
round=0
while [ "$done_kills" -lt "$KILLS" ]; do
  n=$(( KILLS - done_kills < 250 ? KILLS - done_kills : 250 ))
  round=$((round + 1))
  echo "soak_rpm: round $round, $n kills (total $done_kills/$KILLS)"
  COSMOS_RPM_CRASH_KILLS=$n "$BUILD/tests/integration/rpm_crash_test" --gtest_brief=1 \
    | grep -E "rpm crash:|FAILED|PASSED"
  done_kills=$((done_kills + n))
done
echo "soak_rpm: $done_kills kills, every acknowledged flush and log record survived"
