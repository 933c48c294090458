#!/usr/bin/env bash
# Crash soak of the pmem layer: runs the fault-injection crash test with many
# tear seeds (every persist point of the workload x (1 discard + N tear
# modes)), 10,000+ crash points by default, plus repeated SIGKILL rounds.
#   scripts/soak_pmem.sh [SEEDS]     SEEDS tear seeds (default 200 -> ~11,000 crash points)
#   COSMOS_SOAK_KILL_ROUNDS=N        repetitions of the SIGKILL test (default 5)
#   COSMOS_BUILD_DIR=DIR             build directory (default build/, as scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-200}
ROUNDS=${COSMOS_SOAK_KILL_ROUNDS:-5}
BUILD=${COSMOS_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target pmem_crash_test >/dev/null
BIN="$BUILD/tests/integration/pmem_crash/pmem_crash_test"
echo "soak: fault-injection twin, $SEEDS tear seeds"
COSMOS_CRASH_SEEDS=$SEEDS COSMOS_LOG_LEVEL=warn "$BIN" --gtest_filter='TwinCrash.*' | grep -E 'crash points|OK|FAILED|PASSED'
echo "soak: SIGKILL test, $ROUNDS rounds"
COSMOS_LOG_LEVEL=warn "$BIN" --gtest_filter='SigkillCrash.*' --gtest_repeat="$ROUNDS" | grep -E 'kills|FAILED|PASSED'
echo "soak: done"
