#!/usr/bin/env bash
# rpc benchmark suite (called by scripts/bench.sh with BUILD_DIR and RESULTS_DIR):
# COSMOS rpc vs raw UDP and gRPC C++, alternating rounds, writes rpc.json; then
# (as root) the incast benchmark, which merges its incast_* rows into it.
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
INCAST="$BUILD_DIR/bench/rpc/incast_bench"
for b in "$BENCH" "$PEER" "$INCAST"; do
  if [ ! -x "$b" ]; then
    cmake --build "$BUILD_DIR" --target rpc_bench grpc_echo_peer incast_bench >/dev/null
    break
  fi
done
mkdir -p "$RESULTS_DIR"
BUILD_TYPE=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null | cut -d= -f2 || true)
"$BENCH" $QUICK --out "$RESULTS_DIR" --grpc-peer "$PEER" \
  --build-note "binaries from $(basename "$BUILD_DIR") (CMAKE_BUILD_TYPE=${BUILD_TYPE:-unknown})"
# Incast rows (congestion control on vs off on a tbf-shaped veth link) are
# merged into rpc.json; they need root for ip netns and tc.
if [ "$(id -u)" -eq 0 ]; then
  "$INCAST" $QUICK --out "$RESULTS_DIR"
else
  echo "rpc bench: incast rows skipped (need root for ip netns and tc)" >&2
fi
