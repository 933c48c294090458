#!/usr/bin/env bash
# The COSMOS demo: installs dependencies, builds, and runs the main job:
#  1. a local pool with regions, written, persisted, reopened and checked;
#  2. cosmosd (the memory node) in secure mode (SIMULATED enclave: no hardware
#     isolation), regions over a secure connection, the remote log, a short
#     benchmark, and a tampered block caught after a restart;
#  3. cosmos-kv on a secure remote region, driven with redis-cli, restarted;
#  4. etcd and three cosmosd nodes: a region with three replicas, its primary
#     SIGKILLed, everything read back through the new primary.
# COSMOS_DEMO_PLAIN=1 runs steps 2 and 3 without security.
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

# --- 2. Remote persistent memory, secure by default (issues 4 and 5) --------
# COSMOS_DEMO_PLAIN=1 runs this step over a plain connection and plain regions.
if [ -x build/apps/cosmosd/cosmosd ] && [ -x build/examples/remote_log/remote_log ]; then
  KEYS="$DEMO_DIR/keys"
  SECURE_FLAGS=()
  DAEMON_SECURE_FLAGS=()
  CREATE_SECURE=()
  if [ "${COSMOS_DEMO_PLAIN:-0}" != 1 ]; then
    step "secure mode: platform keys for the node's (SIMULATED) enclave and credentials for a client"
    run "$COSMOS" keys platform "$KEYS/node"
    run "$COSMOS" keys client "$KEYS/clients" alice
    run "$COSMOS" keys client "$KEYS/clients" bob
    SECURE_FLAGS=(--platform-pub "$KEYS/node/platform.pub" --measurement "$KEYS/node/measurement"
      --client-key "$KEYS/clients/alice.key")
    BOB_FLAGS=(--platform-pub "$KEYS/node/platform.pub" --measurement "$KEYS/node/measurement"
      --client-key "$KEYS/clients/bob.key")
    DAEMON_SECURE_FLAGS=(--platform-keys "$KEYS/node" --allow "$KEYS/clients/alice.pub"
      --allow "$KEYS/clients/bob.pub" --require-secure)
    CREATE_SECURE=(--secure)
  fi
  RPM_POOL="$DEMO_DIR/remote.pool"
  RPM_PORT_FILE="$DEMO_DIR/cosmosd.port"
  COSMOSD_PID=""
  start_cosmosd() {
    rm -f "$RPM_PORT_FILE"
    build/apps/cosmosd/cosmosd --pool "main=$RPM_POOL,size=256M,create" \
      --listen 127.0.0.1 --port "${1:-0}" --port-file "$RPM_PORT_FILE" --log-level info \
      "${DAEMON_SECURE_FLAGS[@]}" &
    COSMOSD_PID=$!
    for _ in $(seq 200); do [ -s "$RPM_PORT_FILE" ] && break; sleep 0.05; done
    [ -s "$RPM_PORT_FILE" ] || { echo "demo: cosmosd did not start" >&2; exit 1; }
    SERVER="127.0.0.1:$(cat "$RPM_PORT_FILE")"
  }
  stop_cosmosd() {
    kill -TERM "$COSMOSD_PID"
    wait "$COSMOSD_PID" || true
  }
  trap 'kill "$COSMOSD_PID" 2>/dev/null || true' EXIT
  step "start cosmosd (the memory node) on a pool under $DEMO_DIR"
  start_cosmosd 0
  remote() { run "$COSMOS" remote region --server "$SERVER" "${SECURE_FLAGS[@]}" "$@"; }
  step "remote regions through the CLI (--server $SERVER${SECURE_FLAGS:+, secure connection})"
  remote create notes --size 1M "${CREATE_SECURE[@]}"
  remote write notes --offset 0 --data "hello, remote persistent memory"
  remote read notes --offset 0 --length 31
  remote verify notes --offset 0 --data "hello, remote persistent memory"
  remote list
  # expect_error CLASS CMD...: runs CMD, which must fail with error class
  # CLASS (e.g. permission_denied) in its message; anything else stops the demo.
  expect_error() {
    local class=$1 out
    shift
    printf '$ %s\n' "$*"
    if out="$("$@" 2>&1)"; then
      echo "$out"
      echo "demo: the command succeeded, expected $class: security is broken" >&2
      exit 1
    fi
    echo "$out"
    grep -q "$class" <<<"$out" || { echo "demo: expected $class, got another error" >&2; exit 1; }
    echo "(refused with $class, as expected)"
  }
  if [ "${COSMOS_DEMO_PLAIN:-0}" != 1 ]; then
    step "authorization: bob may connect, but holds no right on alice's region"
    expect_error permission_denied "$COSMOS" remote region --server "$SERVER" "${BOB_FLAGS[@]}" \
      read notes --offset 0 --length 31
    expect_error permission_denied "$COSMOS" remote region --server "$SERVER" "${BOB_FLAGS[@]}" \
      delete notes
  fi
  step "the talk's log writer: write + flush + write_after_flush per record (one round trip)"
  run build/examples/remote_log/remote_log --server "$SERVER" "${SECURE_FLAGS[@]}" --region log \
    append --count 200 --size 100 | tail -1
  step "recovery finds the durable prefix"
  run build/examples/remote_log/remote_log --server "$SERVER" "${SECURE_FLAGS[@]}" --region log recover
  step "a short benchmark against the node"
  run "$COSMOS" bench rpm --server "$SERVER" "${SECURE_FLAGS[@]}" "${CREATE_SECURE[@]}" \
    --op write_flush --size 4K --ops 2000 --concurrency 4
  run "$COSMOS" bench rpm --server "$SERVER" "${SECURE_FLAGS[@]}" "${CREATE_SECURE[@]}" \
    --op read --size 4K --ops 2000 --concurrency 1
  step "stop cosmosd (SIGTERM: in-flight flushes finish, then it exits)"
  stop_cosmosd
  if [ "${COSMOS_DEMO_PLAIN:-0}" != 1 ]; then
    step "the node's host is untrusted: the pool file holds no plaintext of what was written"
    if grep -q "hello, remote persistent memory" "$RPM_POOL"; then
      echo "demo: PLAINTEXT FOUND in $RPM_POOL: secure mode is broken" >&2
      exit 1
    fi
    echo "grep -c 'hello, remote persistent memory' $RPM_POOL: 0 matches"
    step "the host edits the pool's region table while the node is down: swap the names 'notes' and 'log'"
    run build/tests/tools/pool_table_tamper "$RPM_POOL" swap-names notes log
    start_cosmosd 0
    step "the enclave binds pool, id and name into each region's sealed root: the swap is caught"
    expect_error integrity_violation "$COSMOS" remote region --server "$SERVER" "${SECURE_FLAGS[@]}" \
      read notes --offset 0 --length 31
    stop_cosmosd
    run build/tests/tools/pool_table_tamper "$RPM_POOL" swap-names notes log
    step "tamper with the pool while the node is down: flip one bit of region 'notes' ciphertext"
    # The protected region's ciphertext area ends its pool region
    # (docs/pool_layout.md); flip a bit in its first block (offset 5).
    NOTES_JSON="$("$COSMOS" --json region list "$RPM_POOL")"
    python3 - "$RPM_POOL" "$NOTES_JSON" <<'PY'
import json, sys
pool, listing = sys.argv[1], json.loads(sys.argv[2])
regions = listing["regions"] if isinstance(listing, dict) else listing
r = next(r for r in regions if r["name"] == "notes")
at = r["offset"] + r["size"] - (1 << 20) + 5
with open(pool, "r+b") as f:
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0x10]))
print(f"flipped bit 4 of pool byte {at} (region 'notes', ciphertext block 0)")
PY
    start_cosmosd 0
    step "the enclave detects it: an integrity error, never wrong data"
    if remote read notes --offset 0 --length 31; then
      echo "demo: the tampered block was served: secure mode is broken" >&2
      exit 1
    else
      echo "(exit status $?: IntegrityViolation, as expected)"
    fi
    stop_cosmosd
  fi
  trap - EXIT
else
  echo "demo: cosmosd / remote_log not built; skipping the remote step" >&2
fi

# --- 3. cosmos-kv on a secure remote region (issue 6) -------------------------
KV=build/apps/cosmos-kv/cosmos-kv
if [ -x "$KV" ] && [ -x build/apps/cosmosd/cosmosd ] && command -v redis-cli >/dev/null; then
  KV_REMOTE_FLAGS=(--backend remote --region kv --region-size 32mb)
  KV_KIND="plain"
  if [ "${COSMOS_DEMO_PLAIN:-0}" != 1 ]; then KV_REMOTE_FLAGS+=(--secure); KV_KIND="secure"; fi
  KV_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  KV_PID=""
  start_kv() {
    "$KV" --bind 127.0.0.1 --port "$KV_PORT" --server "$SERVER" "${SECURE_FLAGS[@]}" \
      "${KV_REMOTE_FLAGS[@]}" --log-level info &
    KV_PID=$!
    for _ in $(seq 200); do
      redis-cli -p "$KV_PORT" PING >/dev/null 2>&1 && return 0
      kill -0 "$KV_PID" 2>/dev/null || { echo "demo: cosmos-kv exited" >&2; exit 1; }
      sleep 0.05
    done
    echo "demo: cosmos-kv did not come up" >&2
    exit 1
  }
  stop_kv() {
    kill -TERM "$KV_PID"
    wait "$KV_PID" || true
  }
  trap 'kill "$KV_PID" "$COSMOSD_PID" 2>/dev/null || true' EXIT
  step "cosmos-kv, the Redis-compatible store, on a $KV_KIND region of cosmosd"
  start_cosmosd 0
  start_kv
  kv() { printf '$ redis-cli %s\n' "$*"; redis-cli -p "$KV_PORT" "$@"; }
  kv PING
  kv SET greeting "hello from cosmos-kv on secure remote persistent memory"
  kv GET greeting
  kv MSET user:1 ada user:2 grace
  kv MGET user:1 user:2
  kv INCR visits
  kv INCRBY visits 41
  kv SET session:tmp gone-soon EX 60
  kv TTL session:tmp
  kv HSET user:1:profile name ada lang en
  kv HGETALL user:1:profile
  kv RPUSH queue job-1 job-2 job-3
  kv LPOP queue
  # A transaction: one connection, applied and made durable as one commit.
  printf '$ redis-cli <<< MULTI; INCR visits; RPUSH queue job-4; HSET user:1:profile visits 1; EXEC\n'
  printf 'MULTI\nINCR visits\nRPUSH queue job-4\nHSET user:1:profile visits 1\nEXEC\n' |
    redis-cli -p "$KV_PORT"
  kv DBSIZE
  step "INFO reports the storage backend, its durability and the security mode"
  redis-cli -p "$KV_PORT" INFO persistence | grep -E "cosmos_(storage_backend|durability_level|security_mode)"
  step "restart cosmos-kv and cosmosd: every acknowledged write is still there"
  stop_kv
  stop_cosmosd
  start_cosmosd 0
  start_kv
  kv GET greeting
  kv GET visits
  kv MGET user:1 user:2
  kv HGETALL user:1:profile
  kv LRANGE queue 0 -1
  stop_kv
  stop_cosmosd
  trap - EXIT
  if [ "${COSMOS_DEMO_PLAIN:-0}" != 1 ]; then
    step "the memory node never saw a plaintext value"
    if grep -q "hello from cosmos-kv" "$RPM_POOL"; then
      echo "demo: PLAINTEXT FOUND in $RPM_POOL: secure mode is broken" >&2
      exit 1
    fi
    echo "grep -c 'hello from cosmos-kv' $RPM_POOL: 0 matches"
  fi
  step "done: see README.md for what each layer guarantees, docs/ for the details"
else
  echo "demo: cosmos-kv, cosmosd or redis-cli missing; skipping the cosmos-kv step" >&2
fi

# --- 4. Replicated region on a cluster (issue 12) ----------------------------
# etcd (Debian's etcd-server) on its own loopback ports and data dir, three
# cosmosd nodes joining it, a region with three replicas; its primary is
# SIGKILLed and everything written is read back through the new primary.
if command -v etcd >/dev/null 2>&1 && [ -x build/apps/cosmosd/cosmosd ]; then
  step "a cluster: etcd and three cosmosd nodes on loopback"
  ETCD_EP=127.0.0.1:23790
  etcd --name cosmos-demo --data-dir "$DEMO_DIR/etcd" \
    --listen-client-urls "http://$ETCD_EP" --advertise-client-urls "http://$ETCD_EP" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster cosmos-demo=http://127.0.0.1:23800 \
    --heartbeat-interval=50 --election-timeout=500 >"$DEMO_DIR/etcd.log" 2>&1 &
  ETCD_PID=$!
  NODE_PIDS=()
  trap 'kill -9 "${NODE_PIDS[@]}" 2>/dev/null; kill "$ETCD_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    etcdctl --endpoints "$ETCD_EP" endpoint health >/dev/null 2>&1 && break
    sleep 0.1
  done
  for i in 1 2 3; do
    printf '$ cosmosd --port %s --pool node%s.pool --cluster %s --node-id node%s --zone zone-%s\n' \
      $((27500 + i * 10)) "$i" "$ETCD_EP" "$i" "$i"
    build/apps/cosmosd/cosmosd --port $((27500 + i * 10)) --workers 1 --flushers 1 \
      --pool "$DEMO_DIR/node$i.pool,size=64M,create" --cluster "$ETCD_EP" --node-id "node$i" \
      --zone "zone-$i" --log-level warn >"$DEMO_DIR/node$i.log" 2>&1 &
    NODE_PIDS+=($!)
  done
  sleep 1
  run etcdctl --endpoints "$ETCD_EP" get --prefix /cosmos/v1/nodes/ --print-value-only
  step "a region with three replicas: placement in etcd, a copy on every node"
  run "$COSMOS" region create ledger --size 4M --replicas 3 --cluster "$ETCD_EP"
  run etcdctl --endpoints "$ETCD_EP" get /cosmos/v1/regions/ledger --print-value-only
  printf 'entry 1: replicated to every node before the flush returned\n' >"$DEMO_DIR/entry1"
  printf 'entry 2: written after the primary died\n' >"$DEMO_DIR/entry2"
  run "$COSMOS" region write ledger --offset 0 --file "$DEMO_DIR/entry1" --cluster "$ETCD_EP"
  PRIMARY=$(etcdctl --endpoints "$ETCD_EP" get /cosmos/v1/regions/ledger --print-value-only |
    sed 's/.*"primary":"\([^"]*\)".*/\1/')
  step "SIGKILL the primary ($PRIMARY); a backup fails it over (new epoch in etcd)"
  kill -9 "${NODE_PIDS[$((${PRIMARY#node} - 1))]}"
  run "$COSMOS" region write ledger --offset 4096 --file "$DEMO_DIR/entry2" --cluster "$ETCD_EP"
  run etcdctl --endpoints "$ETCD_EP" get /cosmos/v1/regions/ledger --print-value-only
  step "everything reads back through the new primary"
  run "$COSMOS" region read ledger --offset 0 --length 60 --cluster "$ETCD_EP"
  run "$COSMOS" region read ledger --offset 4096 --length 40 --cluster "$ETCD_EP"
  kill -TERM "${NODE_PIDS[@]}" 2>/dev/null || true
  wait "${NODE_PIDS[@]}" 2>/dev/null || true
  kill "$ETCD_PID"
  wait "$ETCD_PID" 2>/dev/null || true
  trap - EXIT
  step "cluster done: docs/cluster.md (placement, epochs, failover), docs/semantics.md section 8"
else
  echo "demo: etcd (etcd-server) or cosmosd missing; skipping the cluster step" >&2
fi
