#!/usr/bin/env bash
# kv_replicated_set_rps_c50 (BENCHMARKS.md, suite "cluster"): redis-benchmark
# SET at 50 clients against cosmos-kv on a replicated (r=2) region of a
# cluster (etcd + three cosmosd on loopback, started here), against cosmos-kv
# on an unreplicated region of the same cluster's primary node (a plain
# remote region, --server), in the same run, alternating A B A B, medians.
# Pools on /dev/shm (tmpfs: durability "none"; the figure measures the
# replication path, not a sync). Merges its keys into $RESULTS_DIR/cluster.json
# (other keys kept).
#   BUILD_DIR=... RESULTS_DIR=... bench/cluster/kv_replicated.sh [--quick]
set -euo pipefail
QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kv_replicated bench: unknown option $a" >&2; exit 2 ;;
  esac
done
: "${BUILD_DIR:?BUILD_DIR must point at a build with apps/cosmos-kv and apps/cosmosd}"
: "${RESULTS_DIR:?RESULTS_DIR must be set}"
KV_BIN="$BUILD_DIR/apps/cosmos-kv/cosmos-kv"
COSMOSD_BIN="$BUILD_DIR/apps/cosmosd/cosmosd"
COSMOS_BIN="$BUILD_DIR/apps/cosmos/cosmos"
for b in "$KV_BIN" "$COSMOSD_BIN" "$COSMOS_BIN"; do
  [ -x "$b" ] || { echo "kv_replicated bench: $b not built" >&2; exit 1; }
done
ETCD_BIN=$(command -v etcd || true)
[ -n "$ETCD_BIN" ] || { echo "kv_replicated bench: etcd missing (scripts/setup.sh installs etcd-server)" >&2; exit 1; }
for tool in redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "kv_replicated bench: $tool missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

SHM=/dev/shm
[ -d "$SHM" ] || SHM=/tmp
WORK=$(mktemp -d "$SHM/cosmos-kv-cluster-bench.XXXXXX")
FSTYPE=$(stat -f -c %T "$WORK")
PIDS=()
cleanup() {
  # Last started first: cosmos-kv, then the nodes (they deregister), then etcd.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
    [ "$i" -gt 0 ] && wait "${PIDS[i]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ETCD_PORT=$(free_port); PEER_PORT=$(free_port); R2_PORT=$(free_port); R1_PORT=$(free_port)
EP="http://127.0.0.1:$ETCD_PORT"
"$ETCD_BIN" --name=cosmos-bench --data-dir="$WORK/etcd" \
  --listen-client-urls="$EP" --advertise-client-urls="$EP" \
  --listen-peer-urls="http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
  --initial-cluster="cosmos-bench=http://127.0.0.1:$PEER_PORT" \
  --heartbeat-interval=50 --election-timeout=500 --logger=zap --log-level=warn >"$WORK/etcd.out" 2>&1 &
PIDS+=($!)

# The nodes' workers block at once when idle (as bench/cluster/cluster_bench
# configures them): three nodes, etcd, cosmos-kv and redis-benchmark share
# the host's cores, and a spinning worker takes the core the next hop needs.
printf '[server]\nidle_spin_us = 0\n' >"$WORK/node.toml"
for id in n1 n2 n3; do
  "$COSMOSD_BIN" --listen 127.0.0.1 --port 0 --port-file "$WORK/$id.port" --log-level warn \
    --pool "$WORK/$id.pool,size=320M,create" --workers 1 --flushers 1 -c "$WORK/node.toml" \
    --cluster "$EP" --node-id "$id" --zone "zone-$id" >"$WORK/$id.out" 2>&1 &
  PIDS+=($!)
done
nodes_json() { "$COSMOS_BIN" --json cluster --cluster "$EP" nodes 2>/dev/null || true; }
for _ in $(seq 400); do
  n=$(nodes_json | python3 -c 'import json,sys
try: print(len(json.load(sys.stdin)["nodes"]))
except Exception: print(0)')
  [ "$n" = 3 ] && break
  sleep 0.05
done
[ "$n" = 3 ] || { echo "kv_replicated bench: the three nodes did not register" >&2; cat "$WORK"/n*.out "$WORK/etcd.out" >&2; exit 1; }

wait_port() {
  for _ in $(seq 400); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "kv_replicated bench: cosmos-kv on port $1 did not start:" >&2; cat "$WORK"/kv*.out >&2; exit 1
}
# A: cosmos-kv on a replicated region, two copies (the cluster places them).
"$KV_BIN" --port "$R2_PORT" --cluster "$EP" --replicas 2 --region kv_r2 --region-size 128mb \
  --log-level warn >"$WORK/kv_r2.out" 2>&1 &
PIDS+=($!)
wait_port "$R2_PORT"
# B: the baseline on the same cluster: an unreplicated region on the same
# node as A's primary, reached directly (no epoch, no forwarding), with the
# same client waiting mode (blocking, as --cluster uses by default).
PRIMARY=$("$COSMOS_BIN" --json cluster --cluster "$EP" regions |
  python3 -c 'import json,sys; print([r["primary"] for r in json.load(sys.stdin)["regions"] if r["name"]=="kv_r2"][0])')
PRIMARY_ADDR=$(nodes_json | python3 -c 'import json,sys
print([n["address"] for n in json.load(sys.stdin)["nodes"] if n["id"]==sys.argv[1]][0])' "$PRIMARY")
"$KV_BIN" --port "$R1_PORT" --backend remote --server "$PRIMARY_ADDR" --remote-poll block \
  --region kv_plain --region-size 128mb --log-level warn >"$WORK/kv_plain.out" 2>&1 &
PIDS+=($!)
wait_port "$R1_PORT"
echo "kv_replicated bench: A :$R2_PORT ($(redis-cli -p "$R2_PORT" info persistence | grep -E 'backend|durability' | tr -d '\r' | tr '\n' ' '))"
echo "kv_replicated bench: B :$R1_PORT ($(redis-cli -p "$R1_PORT" info persistence | grep -E 'backend|durability' | tr -d '\r' | tr '\n' ' '))"
echo "kv_replicated bench: primary $PRIMARY at $PRIMARY_ADDR, pools on $SHM ($FSTYPE)"

if [ "$QUICK" = 1 ]; then ROUNDS=5; N=10000; else ROUNDS=9; N=50000; fi
rps() {
  redis-benchmark -p "$1" -c 50 -n "$2" -t set --csv 2>/dev/null |
    python3 -c 'import csv,sys
rows=[r for r in csv.reader(sys.stdin) if r and r[0].upper()=="SET"]
print(rows[-1][1] if rows else "0")'
}
rps "$R2_PORT" 1000 >/dev/null; rps "$R1_PORT" 1000 >/dev/null  # warm-up
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
A=""; B=""
for r in $(seq "$ROUNDS"); do
  A+=" $(rps "$R2_PORT" "$N")"
  B+=" $(rps "$R1_PORT" "$N")"
  echo "kv_replicated bench: round $r/$ROUNDS: SET c50 replicated r=2 ${A##* } vs unreplicated ${B##* }"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
A_INFO=$(redis-cli -p "$R2_PORT" info persistence | tr -d '\r' | grep -E 'cosmos_(storage_backend|durability_level|group_commits|records_committed)' | tr '\n' ' ')
WAIT_R2=$(redis-cli -p "$R2_PORT" wait 1 0 | tr -d '\r')

mkdir -p "$RESULTS_DIR"
python3 - "$RESULTS_DIR/cluster.json" "$QUICK" "$FSTYPE" "$A" "$B" "$LOAD_START" "$LOAD_END" "$A_INFO" "$WAIT_R2" "$N" <<'PY'
import json, os, statistics, sys, datetime, platform
out, quick, fstype = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
a = [float(x) for x in sys.argv[4].split()]
b = [float(x) for x in sys.argv[5].split()]
load_start, load_end, a_info, wait_r2, n = sys.argv[6:11]
try:
  doc = json.load(open(out))
except (OSError, ValueError):
  doc = {"suite": "cluster", "quick": quick,
         "host": {"cpus": os.cpu_count(), "kernel": platform.release(),
                  "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
         "metrics": {}}
doc.setdefault("metrics", {})
doc.setdefault("notes", [])
va, vb = statistics.median(a), statistics.median(b)
doc["metrics"]["kv_replicated_set_rps_c50"] = {
  "value": round(va, 1), "unit": "rps", "better": "higher",
  "rounds": a, "min": min(a), "max": max(a),
  "baseline": "kv_unreplicated_remote_set_rps_c50", "baseline_value": round(vb, 1),
  "ratio": round(va / vb, 3) if vb else 0.0,
  "baseline_rounds": b, "baseline_min": min(b), "baseline_max": max(b),
  "quick": quick}
doc["metrics"]["kv_unreplicated_remote_set_rps_c50"] = {
  "value": round(vb, 1), "unit": "rps", "better": "higher",
  "rounds": b, "min": min(b), "max": max(b), "quick": quick}
doc["notes"] = [x for x in doc["notes"] if not str(x).startswith("kv_replicated_set_rps_c50:")]
doc["notes"].append(
  "kv_replicated_set_rps_c50: redis-benchmark -t set -c 50 -n %s (3-byte values, one key), %d alternating rounds, medians; "
  "A = cosmos-kv --cluster --replicas 2 (every SET acknowledged once its group commit's flush is durable on both replicas: "
  "client -> primary -> backup -> primary -> client), B = cosmos-kv --backend remote --server <A's primary> on an "
  "unreplicated region (one round trip), both with blocking client waits (--remote-poll block); pools on %s (%s: durability "
  "'none', no sync cost on either side); 3 cosmosd + etcd + 2 cosmos-kv + redis-benchmark on one shared host "
  "(load average %s at start, %s at end): noisy, a quick figure unless quick is false; A's WAIT 1 0 after the run: %s; "
  "A's counters: %s" % (n, len(a), "/dev/shm" if fstype == "tmpfs" else fstype, fstype, load_start, load_end, wait_r2,
                         a_info.strip()))
json.dump(doc, open(out, "w"), indent=2)
m = doc["metrics"]["kv_replicated_set_rps_c50"]
print("kv_replicated_set_rps_c50 %.0f rps vs unreplicated %.0f rps: ratio %.3f (rounds %s vs %s)" %
      (m["value"], m["baseline_value"], m["ratio"], a, b))
print("merged into", out)
PY
