#!/usr/bin/env bash
# pmem benchmark suite, called by scripts/bench.sh with BUILD_DIR and
# RESULTS_DIR set; optional --quick. Page-backend files go to a directory on
# the build tree's file system (a real disk here, not tmpfs); the emulated
# libpmem2 path uses /dev/shm. Writes $RESULTS_DIR/pmem.json.
set -euo pipefail
: "${BUILD_DIR:?BUILD_DIR must be set (scripts/bench.sh sets it)}"
: "${RESULTS_DIR:?RESULTS_DIR must be set (scripts/bench.sh sets it)}"
BIN="$BUILD_DIR/bench/pmem/pmem_bench"
[ -x "$BIN" ] || { echo "pmem bench: $BIN not built" >&2; exit 1; }
PAGE_DIR="$BUILD_DIR/bench_pmem_files"
mkdir -p "$PAGE_DIR" "$RESULTS_DIR"
EMU_DIR=/dev/shm
[ -d "$EMU_DIR" ] || EMU_DIR="$PAGE_DIR"
exec "$BIN" --results "$RESULTS_DIR" --page-dir "$PAGE_DIR" --emu-dir "$EMU_DIR" "$@"
