#!/usr/bin/env bash
# secure benchmark suite, called by scripts/bench.sh with BUILD_DIR and
# RESULTS_DIR set; optional --quick. Runs an in-process cosmosd (one worker,
# simulated enclave) serving a secure and a plain region to a secure and a
# plain client, alternating A/B rounds, for three trusted-counter
# configurations; writes $RESULTS_DIR/secure.json.
set -euo pipefail
: "${BUILD_DIR:?BUILD_DIR must be set (scripts/bench.sh sets it)}"
: "${RESULTS_DIR:?RESULTS_DIR must be set (scripts/bench.sh sets it)}"
BIN="$BUILD_DIR/bench/secure/secure_bench"
[ -x "$BIN" ] || { echo "secure bench: $BIN not built" >&2; exit 1; }
# Pool and counter files on tmpfs (not durable): the suite measures the
# security layer's cost, not a storage device.
SHM=/dev/shm
[ -d "$SHM" ] || SHM=/tmp
mkdir -p "$RESULTS_DIR"
echo "secure bench: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec "$BIN" --results "$RESULTS_DIR" --shm-dir "$SHM" "$@"
