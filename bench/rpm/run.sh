#!/usr/bin/env bash
# rpm benchmark suite, called by scripts/bench.sh with BUILD_DIR and
# RESULTS_DIR set; optional --quick. Runs an in-process cosmosd (one busy-poll
# worker) and a raw UDP echo peer, alternating A/B rounds; writes
# $RESULTS_DIR/rpm.json.
set -euo pipefail
: "${BUILD_DIR:?BUILD_DIR must be set (scripts/bench.sh sets it)}"
: "${RESULTS_DIR:?RESULTS_DIR must be set (scripts/bench.sh sets it)}"
BIN="$BUILD_DIR/bench/rpm/rpm_bench"
[ -x "$BIN" ] || { echo "rpm bench: $BIN not built" >&2; exit 1; }
SHM=/dev/shm
[ -d "$SHM" ] || SHM=/tmp
DISK="$BUILD_DIR/bench_rpm_files"
mkdir -p "$DISK" "$RESULTS_DIR"
# Datagram size: the raw UDP baseline sends each message (e.g. a 4 KB reply)
# as one loopback datagram; COSMOS gets datagrams as large too, up to a
# jumbo frame (node and client --mtu 8972; sessions never exceed the path
# MTU). Pass --mtu 1472 to measure Ethernet-sized packets instead.
exec "$BIN" --results "$RESULTS_DIR" --shm-dir "$SHM" --disk-dir "$DISK" --mtu 8972 "$@"
