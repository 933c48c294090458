#!/usr/bin/env bash
# The COSMOS demo: installs dependencies, builds, and runs the main job.
# Today: a local pool with regions, written, persisted, reopened and shown.
# Later issues append their steps (remote, secure, kv) as further sections.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
if [ ! -x build/apps/cosmos/cosmos ]; then
  echo "demo: the admin CLI (apps/cosmos) is not built yet; nothing to show" >&2
  exit 1
fi

COSMOS=build/apps/cosmos/cosmos
step() { printf '\n=== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# Demo files live under the build tree (a disk file system here), so the
# page backend's msync really reaches storage; /tmp or /dev/shm may be tmpfs.
DEMO_DIR="$(pwd)/build/demo"
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
if [ "$(stat -f -c %T "$DEMO_DIR")" = tmpfs ]; then
  echo "demo: note: $DEMO_DIR is on tmpfs: the pool works but is NOT durable (durability none)"
else
  echo "demo: pool files in $DEMO_DIR ($(stat -f -c %T "$DEMO_DIR") file system: durable)"
fi

# --- 1. Local pool (issue 2) ------------------------------------------------
POOL="$DEMO_DIR/demo.pool"
step "create a 64 MiB pool"
run "$COSMOS" pool create "$POOL" --size 64M
step "create regions"
run "$COSMOS" region create "$POOL" journal --size 4M
run "$COSMOS" region create "$POOL" table --size 16M --flags 1
step "write and persist through the CLI (each write is msync'd before it returns)"
run "$COSMOS" region write "$POOL" journal --offset 0 --data "hello, persistent world"
run "$COSMOS" region write "$POOL" table --offset 4096 --data "row 1: durable"
step "reopen: every command below opens the pool afresh and reads what is on disk"
run "$COSMOS" region read "$POOL" journal --offset 0 --length 23
run "$COSMOS" region read "$POOL" table --offset 4096 --length 14
run "$COSMOS" pool info "$POOL"
run "$COSMOS" region list "$POOL"
step "check every on-media structure (read-only, changes nothing)"
run "$COSMOS" pool check "$POOL"
step "bad input gets a clear error, nothing altered"
run "$COSMOS" region write "$POOL" journal --offset $((4 * 1024 * 1024 - 2)) --data "too long" 2>&1 ||
  echo "(exit status $?: as expected)"

# --- 2. Remote persistent memory (issue 4) -----------------------------------
if [ -x build/apps/cosmosd/cosmosd ] && [ -x build/examples/remote_log/remote_log ]; then
  step "start cosmosd (the memory node) on a pool under $DEMO_DIR"
  RPM_PORT_FILE="$DEMO_DIR/cosmosd.port"
  build/apps/cosmosd/cosmosd --pool "main=$DEMO_DIR/remote.pool,size=64,create" \
    --listen 127.0.0.1 --port 0 --port-file "$RPM_PORT_FILE" --log-level info &
  COSMOSD_PID=$!
  trap 'kill "$COSMOSD_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [ -s "$RPM_PORT_FILE" ] && break; sleep 0.05; done
  SERVER="127.0.0.1:$(cat "$RPM_PORT_FILE")"
  step "remote regions through the CLI (--server $SERVER)"
  run "$COSMOS" remote region --server "$SERVER" create notes --size 1M
  run "$COSMOS" remote region --server "$SERVER" write notes --offset 0 --data "hello, remote persistent memory"
  run "$COSMOS" remote region --server "$SERVER" read notes --offset 0 --length 31
  run "$COSMOS" remote region --server "$SERVER" verify notes --offset 0 --data "hello, remote persistent memory"
  run "$COSMOS" remote region --server "$SERVER" list
  step "the talk's log writer: write + flush + write_after_flush per record (one round trip)"
  run build/examples/remote_log/remote_log --server "$SERVER" --region log append --count 200 --size 100 | tail -1
  step "recovery finds the durable prefix"
  run build/examples/remote_log/remote_log --server "$SERVER" --region log recover
  step "a short benchmark against the node"
  run "$COSMOS" bench rpm --server "$SERVER" --op write_flush --size 4K --ops 2000 --concurrency 4
  run "$COSMOS" bench rpm --server "$SERVER" --op read --size 4K --ops 2000 --concurrency 1
  step "stop cosmosd (SIGTERM: in-flight flushes finish, then it exits)"
  kill -TERM "$COSMOSD_PID"
  wait "$COSMOSD_PID"
  trap - EXIT
else
  echo "demo: cosmosd / remote_log not built; skipping the remote step" >&2
fi
