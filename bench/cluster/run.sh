#!/usr/bin/env bash
# cluster benchmark suite, called by scripts/bench.sh with BUILD_DIR and
# RESULTS_DIR set; optional --quick. Starts etcd (etcd-server) and three
# cosmosd on loopback with pools on /dev/shm (tmpfs: the figures measure the
# network and forwarding cost of replication, not msync) and writes
# $RESULTS_DIR/cluster.json.
set -euo pipefail
: "${BUILD_DIR:?BUILD_DIR must be set (scripts/bench.sh sets it)}"
: "${RESULTS_DIR:?RESULTS_DIR must be set (scripts/bench.sh sets it)}"
BIN="$BUILD_DIR/bench/cluster/cluster_bench"
[ -x "$BIN" ] || { echo "cluster bench: $BIN not built" >&2; exit 1; }
SHM=/dev/shm
[ -d "$SHM" ] || SHM=/tmp
mkdir -p "$RESULTS_DIR"
"$BIN" --results "$RESULTS_DIR" --pool-dir "$SHM" "$@"
# kv_replicated_set_rps_c50: cosmos-kv on a replicated region vs an unreplicated one (merged into cluster.json).
"$(dirname "$0")/kv_replicated.sh" $([[ " $* " == *" --quick "* ]] && echo --quick)
