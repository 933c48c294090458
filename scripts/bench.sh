#!/usr/bin/env bash
# Benchmarks per BENCHMARKS.md: builds Release (build-release/), runs SUITE,
# prints a table and writes bench/results/SUITE.json.
#   scripts/bench.sh SUITE [--quick]     SUITE: pmem | rpc | rpm | secure | kv | cluster | all
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -ge 1 ] || { usage; exit 2; }
case "$1" in -h|--help) usage; exit 0;; esac
SUITE=$1; shift
QUICK=""
for a in "$@"; do
  case "$a" in --quick) QUICK="--quick";; *) echo "bench: unknown option $a"; usage; exit 2;; esac
done
scripts/setup.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOSMOS_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
mkdir -p bench/results

run_suite() {
  local s=$1
  local runner="bench/$s/run.sh"
  if [ ! -x "$runner" ]; then
    echo "bench: suite '$s' is not implemented yet ($runner missing)" >&2
    return 1
  fi
  echo "=== bench suite: $s ${QUICK} ==="
  BUILD_DIR="$(pwd)/build-release" RESULTS_DIR="$(pwd)/bench/results" "$runner" $QUICK
}

if [ "$SUITE" = all ]; then
  for s in pmem rpc rpm secure kv cluster; do run_suite "$s"; done
else
  run_suite "$SUITE"
fi
