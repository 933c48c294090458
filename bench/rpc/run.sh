#!/usr/bin/env bash
# rpc benchmark suite (called by scripts/bench.sh with BUILD_DIR and RESULTS_DIR):
# COSMOS rpc vs raw UDP and gRPC C++, alternating rounds, writes rpc.json.
#   bench/rpc/run.sh [--quick]
set -euo pipefail
BUILD_DIR=${BUILD_DIR:?BUILD_DIR must point at a Release build}
RESULTS_DIR=${RESULTS_DIR:?RESULTS_DIR must name the output directory}
QUICK=""
for a in "$@"; do
  case "$a" in --quick) QUICK="--quick";; *) echo "rpc bench: unknown option $a" >&2; exit 2;; esac
done
BENCH="$BUILD_DIR/bench/rpc/rpc_bench"
PEER="$BUILD_DIR/bench/rpc/grpc_echo_peer"
for b in "$BENCH" "$PEER"; do
  if [ ! -x "$b" ]; then
    cmake --build "$BUILD_DIR" --target rpc_bench grpc_echo_peer >/dev/null
    break
  fi
done
mkdir -p "$RESULTS_DIR"
BUILD_TYPE=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null | cut -d= -f2 || true)
exec "$BENCH" $QUICK --out "$RESULTS_DIR" --grpc-peer "$PEER" \
  --build-note "binaries from $(basename "$BUILD_DIR") (CMAKE_BUILD_TYPE=${BUILD_TYPE:-unknown})"
