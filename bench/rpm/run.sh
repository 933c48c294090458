#!/usr/bin/env bash
# rpm benchmark suite, called by scripts/bench.sh with BUILD_DIR and
# RESULTS_DIR set; optional --quick. Runs an in-process cosmosd (one
# adaptive-poll worker) and a raw UDP echo peer, alternating A/B rounds, at
# two session MTUs: 8972 (jumbo frame; writes $RESULTS_DIR/rpm.json) and 1472
# (Ethernet, the node's default; writes $RESULTS_DIR/rpm_mtu1472.json).
set -euo pipefail
: "${BUILD_DIR:?BUILD_DIR must be set (scripts/bench.sh sets it)}"
: "${RESULTS_DIR:?RESULTS_DIR must be set (scripts/bench.sh sets it)}"
BIN="$BUILD_DIR/bench/rpm/rpm_bench"
[ -x "$BIN" ] || { echo "rpm bench: $BIN not built" >&2; exit 1; }
SHM=/dev/shm
[ -d "$SHM" ] || SHM=/tmp
DISK="$BUILD_DIR/bench_rpm_files"
mkdir -p "$DISK" "$RESULTS_DIR"
# Datagram size: node and client run at --mtu N, and the raw UDP baseline
# splits each message into datagrams of the same session MTU (mtu_bytes and
# baseline_datagram_bytes in the JSON). GSO on both sides: COSMOS's transport
# and the raw baseline both send runs of datagrams with UDP_SEGMENT and
# receive with UDP_GRO (neither, on a kernel without them).
echo "rpm bench: --mtu 8972"
"$BIN" --results "$RESULTS_DIR" --shm-dir "$SHM" --disk-dir "$DISK" --mtu 8972 "$@"
echo "rpm bench: --mtu 1472"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$BIN" --results "$TMP" --shm-dir "$SHM" --disk-dir "$DISK" --mtu 1472 "$@"
mv "$TMP/rpm.json" "$RESULTS_DIR/rpm_mtu1472.json"
echo "rpm bench: wrote $RESULTS_DIR/rpm_mtu1472.json"
