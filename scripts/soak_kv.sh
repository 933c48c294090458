#!/usr/bin/env bash
# Soak test for cosmos-kv crash safety: runs the SIGKILL crash test with many
# more kills than the default suite (default 1000).
#   scripts/soak_kv.sh [KILLS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-1000}
BUILD_DIR=${2:-build}
case "$KILLS" in ''|*[!0-9]*) echo "soak_kv: KILLS must be a number" >&2; exit 2;; esac
if [ ! -x "$BUILD_DIR/tests/integration/kv_crash_test" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target kv_crash_test cosmos-kv
fi
echo "soak_kv: $KILLS SIGKILLs under concurrent write load ($BUILD_DIR)"
COSMOS_KV_CRASH_KILLS=$KILLS "$BUILD_DIR/tests/integration/kv_crash_test" \
  --gtest_filter='KvCrash.*' --gtest_brief=1
