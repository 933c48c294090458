#!/usr/bin/env bash
# cosmos-kv benchmark (BENCHMARKS.md suite "kv"): redis-benchmark, 50 clients,
# with and without -P 16, against cosmos-kv (default embedded backend, a pmem
# pool region on a real disk; and a secure region of a cosmosd started here),
# every write durable before its reply, and redis-server started here on
# private ports (appendfsync always for SET, no persistence for GET).
# Runs alternate A B A B and report medians. Writes $RESULTS_DIR/kv.json.
#   BUILD_DIR=... RESULTS_DIR=... bench/kv/run.sh [--quick]
set -euo pipefail
QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kv bench: unknown option $a" >&2; exit 2 ;;
  esac
done
: "${BUILD_DIR:?BUILD_DIR must point at a build with apps/cosmos-kv}"
: "${RESULTS_DIR:?RESULTS_DIR must be set}"
KV_BIN="$BUILD_DIR/apps/cosmos-kv/cosmos-kv"
COSMOSD_BIN="$BUILD_DIR/apps/cosmosd/cosmosd"
COSMOS_BIN="$BUILD_DIR/apps/cosmos/cosmos"
for b in "$KV_BIN" "$COSMOSD_BIN" "$COSMOS_BIN"; do
  [ -x "$b" ] || { echo "kv bench: $b not built" >&2; exit 1; }
done
for tool in redis-server redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "kv bench: $tool missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

# A directory on a real disk (not tmpfs): durability numbers mean nothing on RAM.
WORK_PARENT=${COSMOS_BENCH_DIR:-/var/tmp}
WORK=$(mktemp -d "$WORK_PARENT/cosmos-kv-bench.XXXXXX")
FSTYPE=$(stat -f -c %T "$WORK")
if [ "$FSTYPE" = tmpfs ] || [ "$FSTYPE" = ramfs ]; then
  echo "kv bench: $WORK is on $FSTYPE, not durable; set COSMOS_BENCH_DIR to a disk directory" >&2
  exit 1
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KV_PORT=$(free_port); AOF_PORT=$(free_port); MEM_PORT=$(free_port); RKV_PORT=$(free_port)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "kv bench: server on port $1 did not start" >&2; exit 1
}

# Embedded default: a region of a local pool file (durability "page" on a disk).
"$KV_BIN" --port "$KV_PORT" --pool "$WORK/cosmos-kv.pool" --pool-size 520mb --region-size 512mb \
  --log-level warn >"$WORK/cosmos-kv.out" 2>&1 &
PIDS+=($!)
# Remote secure: cosmosd (simulated enclave) on a pool file of the same disk,
# keys made with `cosmos keys`, cosmos-kv on a secure region over loopback.
"$COSMOS_BIN" keys platform "$WORK/node" >/dev/null
"$COSMOS_BIN" keys client "$WORK/clients" kv >/dev/null
"$COSMOSD_BIN" --listen 127.0.0.1 --port 0 --port-file "$WORK/cosmosd.port" --log-level warn \
  --pool "main=$WORK/node.pool,size=320,create" --platform-keys "$WORK/node" \
  --allow "$WORK/clients/kv.pub" >"$WORK/cosmosd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/cosmosd.port" ] && break; sleep 0.05; done
[ -s "$WORK/cosmosd.port" ] || { echo "kv bench: cosmosd did not start:" >&2; cat "$WORK/cosmosd.out" >&2; exit 1; }
COSMOSD_ADDR="127.0.0.1:$(cat "$WORK/cosmosd.port")"
"$KV_BIN" --port "$RKV_PORT" --backend remote --server "$COSMOSD_ADDR" --region kv \
  --region-size 256mb --platform-pub "$WORK/node/platform.pub" \
  --measurement "$WORK/node/measurement" --client-key "$WORK/clients/kv.key" \
  --log-level warn >"$WORK/cosmos-kv-remote.out" 2>&1 &
PIDS+=($!)
mkdir -p "$WORK/aof" "$WORK/mem"
redis-server --port "$AOF_PORT" --bind 127.0.0.1 --dir "$WORK/aof" --save '' --appendonly yes \
  --appendfsync always --logfile "$WORK/aof/redis.log" &
PIDS+=($!)
redis-server --port "$MEM_PORT" --bind 127.0.0.1 --dir "$WORK/mem" --save '' --appendonly no \
  --logfile "$WORK/mem/redis.log" &
PIDS+=($!)
wait_port "$KV_PORT"; wait_port "$AOF_PORT"; wait_port "$MEM_PORT"; wait_port "$RKV_PORT"
echo "kv bench: cosmos-kv :$KV_PORT ($(redis-cli -p "$KV_PORT" info persistence | grep -E 'backend|durability' | tr -d '\r' | tr '\n' ' '))"
echo "kv bench: cosmos-kv remote :$RKV_PORT ($(redis-cli -p "$RKV_PORT" info persistence | grep -E 'backend|durability|security' | tr -d '\r' | tr '\n' ' '))"
echo "kv bench: redis appendfsync always :$AOF_PORT, redis no persistence :$MEM_PORT, log dir $WORK ($FSTYPE)"

# Remote secure request counts are smaller: every secure commit waits for the
# simulated trusted counter (tens of ms), every GET is a remote read.
if [ "$QUICK" = 1 ]; then
  ROUNDS=3; N_SET=20000; N_SET_P=200000; N_GET=50000; N_GET_P=300000
  N_RSET=2000; N_RSET_P=20000; N_RGET=10000; N_RGET_P=20000
else
  ROUNDS=7; N_SET=60000; N_SET_P=600000; N_GET=150000; N_GET_P=1000000
  N_RSET=6000; N_RSET_P=60000; N_RGET=30000; N_RGET_P=60000
fi

# rps PORT TEST N [PIPELINE]: requests per second reported by redis-benchmark.
rps() {
  local port=$1 test=$2 n=$3 p=${4:-1}
  redis-benchmark -p "$port" -c 50 -n "$n" -P "$p" -t "$test" --csv 2>/dev/null |
    python3 -c 'import csv,sys
rows=[r for r in csv.reader(sys.stdin) if r and r[0].upper()==sys.argv[1].upper()]
print(rows[-1][1] if rows else "0")' "$test"
}

# The GET key redis-benchmark uses (no -r: the literal key), 3-byte value as -d 3.
for p in "$KV_PORT" "$MEM_PORT" "$RKV_PORT"; do redis-cli -p "$p" set key:__rand_int__ xxx >/dev/null; done
# Warm-up (connections, page cache, log file pages).
rps "$KV_PORT" set 5000 >/dev/null; rps "$AOF_PORT" set 5000 >/dev/null
rps "$RKV_PORT" set 500 >/dev/null

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R
for r in $(seq "$ROUNDS"); do
  R[kv_set]+=" $(rps "$KV_PORT" set "$N_SET")"
  R[aof_set]+=" $(rps "$AOF_PORT" set "$N_SET")"
  R[kv_set_p]+=" $(rps "$KV_PORT" set "$N_SET_P" 16)"
  R[aof_set_p]+=" $(rps "$AOF_PORT" set "$N_SET_P" 16)"
  R[kv_get]+=" $(rps "$KV_PORT" get "$N_GET")"
  R[mem_get]+=" $(rps "$MEM_PORT" get "$N_GET")"
  R[kv_get_p]+=" $(rps "$KV_PORT" get "$N_GET_P" 16)"
  R[mem_get_p]+=" $(rps "$MEM_PORT" get "$N_GET_P" 16)"
  R[rkv_set]+=" $(rps "$RKV_PORT" set "$N_RSET")"
  R[rkv_set_p]+=" $(rps "$RKV_PORT" set "$N_RSET_P" 16)"
  R[rkv_get]+=" $(rps "$RKV_PORT" get "$N_RGET")"
  R[rkv_get_p]+=" $(rps "$RKV_PORT" get "$N_RGET_P" 16)"
  echo "kv bench: round $r/$ROUNDS: SET ${R[kv_set]##* } vs ${R[aof_set]##* }," \
       "SET -P16 ${R[kv_set_p]##* } vs ${R[aof_set_p]##* }," \
       "GET ${R[kv_get]##* } vs ${R[mem_get]##* }, GET -P16 ${R[kv_get_p]##* } vs ${R[mem_get_p]##* }"
  echo "kv bench: round $r/$ROUNDS remote secure: SET ${R[rkv_set]##* }, SET -P16 ${R[rkv_set_p]##* }," \
       "GET ${R[rkv_get]##* }, GET -P16 ${R[rkv_get_p]##* }"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
KV_INFO=$(redis-cli -p "$KV_PORT" info persistence | tr -d '\r' | grep -E 'cosmos_(group_commits|records_committed|compactions)' | tr '\n' ' ')
RKV_INFO=$(redis-cli -p "$RKV_PORT" info persistence | tr -d '\r' | grep -E 'cosmos_(storage_backend|durability_level|security_mode|group_commits|records_committed)' | tr '\n' ' ')

mkdir -p "$RESULTS_DIR"
python3 - "$RESULTS_DIR/kv.json" "$QUICK" "$FSTYPE" "$KV_INFO" "$LOAD_START" "$LOAD_END" "$RKV_INFO" <<PY
import json, os, statistics, sys, datetime, platform
out, quick, fstype, kvinfo = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
load_start, load_end, rkvinfo = sys.argv[5], sys.argv[6], sys.argv[7]
R = {k: [float(x) for x in v.split()] for k, v in {
  "kv_set": "${R[kv_set]}", "aof_set": "${R[aof_set]}",
  "kv_set_p": "${R[kv_set_p]}", "aof_set_p": "${R[aof_set_p]}",
  "kv_get": "${R[kv_get]}", "mem_get": "${R[mem_get]}",
  "kv_get_p": "${R[kv_get_p]}", "mem_get_p": "${R[mem_get_p]}",
  "rkv_set": "${R[rkv_set]}", "rkv_set_p": "${R[rkv_set_p]}",
  "rkv_get": "${R[rkv_get]}", "rkv_get_p": "${R[rkv_get_p]}"}.items()}
med = {k: statistics.median(v) for k, v in R.items()}
# Each metric carries its per-round values and their min/max next to the
# median (the shape BenchReport writes for the C++ suites).
def metric(key, base_key, base_name):
  value, base = med[key], med[base_key]
  return {"value": round(value, 1), "unit": "rps", "better": "higher",
          "rounds": R[key], "min": min(R[key]), "max": max(R[key]),
          "baseline": base_name, "baseline_value": round(base, 1),
          "ratio": round(value / base, 3) if base else 0.0,
          "baseline_rounds": R[base_key], "baseline_min": min(R[base_key]),
          "baseline_max": max(R[base_key])}
doc = {
  "suite": "kv", "quick": quick,
  "host": {"cpus": os.cpu_count(), "kernel": platform.release(),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
  "metrics": {
    "set_rps_c50": metric("kv_set", "aof_set", "redis_appendfsync_always_set_rps_c50"),
    "set_rps_c50_p16": metric("kv_set_p", "aof_set_p", "redis_appendfsync_always_set_rps_c50_p16"),
    "get_rps_c50": metric("kv_get", "mem_get", "redis_no_persistence_get_rps_c50"),
    "get_rps_c50_p16": metric("kv_get_p", "mem_get_p", "redis_no_persistence_get_rps_c50_p16"),
    "remote_secure_set_rps_c50": metric("rkv_set", "aof_set", "redis_appendfsync_always_set_rps_c50"),
    "remote_secure_set_rps_c50_p16": metric("rkv_set_p", "aof_set_p", "redis_appendfsync_always_set_rps_c50_p16"),
    "remote_secure_get_rps_c50": metric("rkv_get", "mem_get", "redis_no_persistence_get_rps_c50"),
    "remote_secure_get_rps_c50_p16": metric("rkv_get_p", "mem_get_p", "redis_no_persistence_get_rps_c50_p16"),
  },
  "notes": [
    "cosmos-kv embedded (set_/get_ metrics): the default backend, a region of a local COSMOS pmem pool file on %s (durability 'page': memcpy + msync); every SET acknowledged only after its group commit (Flush + WriteAfterFlush of the tail = 2 msync)" % fstype,
    "cosmos-kv remote_secure_*: a secure region (AES-GCM, simulated enclave: no hardware isolation) of a cosmosd started by this script on the same host (loopback UDP, node pool file on the same disk); each group commit = Region::Flush + Region::WriteAfterFlush round trips, each waiting for the node's sync and its simulated trusted counter; each GET is a remote read through the secure channel",
    "baselines: redis-server from Debian in the same run on the same disk; SET vs appendonly yes + appendfsync always, GET vs no persistence",
    "redis-benchmark -c 50 (-P 16 for *_p16), default 3-byte values, single key; %d alternating rounds, medians" % len(R["kv_set"]),
    "raw samples (rps): " + json.dumps(R),
    "cosmos-kv counters after the run: " + kvinfo.strip(),
    "host load average (1/5/15 min) at start %s, at end %s: the machine is shared, so fsync-bound SET figures vary a lot between rounds" % (load_start, load_end),
    "cosmos-kv remote secure counters after the run: " + rkvinfo.strip(),
    "remote rows use fewer requests per round than the embedded rows (%s SET, %s GET per round in this mode)" % ("2000/20000" if quick else "6000/60000", "10000/20000" if quick else "30000/60000"),
  ],
}
json.dump(doc, open(out, "w"), indent=2)
print()
print("%-18s %12s %12s %7s  baseline" % ("metric", "cosmos-kv", "baseline", "ratio"))
for k, m in doc["metrics"].items():
  print("%-18s %12.0f %12.0f %7.3f  %s" % (k, m["value"], m["baseline_value"], m["ratio"], m["baseline"]))
print("wrote", out)
PY
