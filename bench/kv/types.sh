#!/usr/bin/env bash
# cosmos-kv data-type benchmark: redis-benchmark -t hset,lpush,sadd,zadd,incr
# (50 clients, default 3-byte values) against cosmos-kv on its default
# embedded backend (a pool file on a real disk) and redis-server with
# appendonly yes + appendfsync always, both started here on private ports;
# every write durable before its reply on both sides. Rounds alternate A B,
# medians are reported. Writes $RESULTS_DIR/kv_types.json.
#   BUILD_DIR=... RESULTS_DIR=... bench/kv/types.sh [--quick] [--requests N]
# Note: -t lpush pushes onto one list, which grows by N every round (a
# long list is exactly what delta records are for).
set -euo pipefail
QUICK=0
N_OVERRIDE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --requests) N_OVERRIDE=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kv types bench: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
: "${BUILD_DIR:?BUILD_DIR must point at a build with apps/cosmos-kv}"
: "${RESULTS_DIR:?RESULTS_DIR must be set}"
KV_BIN="$BUILD_DIR/apps/cosmos-kv/cosmos-kv"
[ -x "$KV_BIN" ] || { echo "kv types bench: $KV_BIN not built" >&2; exit 1; }
for tool in redis-server redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "kv types bench: $tool missing (scripts/setup.sh)" >&2; exit 1; }
done
WORK_PARENT=${COSMOS_BENCH_DIR:-/var/tmp}
WORK=$(mktemp -d "$WORK_PARENT/cosmos-kv-types.XXXXXX")
FSTYPE=$(stat -f -c %T "$WORK")
if [ "$FSTYPE" = tmpfs ] || [ "$FSTYPE" = ramfs ]; then
  echo "kv types bench: $WORK is on $FSTYPE, not durable; set COSMOS_BENCH_DIR" >&2
  exit 1
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KV_PORT=$(free_port); AOF_PORT=$(free_port)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "kv types bench: server on port $1 did not start" >&2; exit 1
}
"$KV_BIN" --port "$KV_PORT" --pool "$WORK/cosmos-kv.pool" --pool-size 520mb --region-size 512mb \
  --log-level warn >"$WORK/cosmos-kv.out" 2>&1 &
PIDS+=($!)
mkdir -p "$WORK/aof"
redis-server --port "$AOF_PORT" --bind 127.0.0.1 --dir "$WORK/aof" --save '' --appendonly yes \
  --appendfsync always --logfile "$WORK/aof/redis.log" &
PIDS+=($!)
wait_port "$KV_PORT"; wait_port "$AOF_PORT"

if [ "$QUICK" = 1 ]; then ROUNDS=3; N=10000; else ROUNDS=5; N=40000; fi
[ -n "$N_OVERRIDE" ] && N=$N_OVERRIDE
TESTS="hset lpush sadd zadd incr"

# rps PORT TEST N: requests per second reported by redis-benchmark.
rps() {
  redis-benchmark -p "$1" -c 50 -n "$3" -t "$2" --csv 2>/dev/null |
    python3 -c 'import csv,sys
rows=[r for r in csv.reader(sys.stdin) if r and r[0].upper()==sys.argv[1].upper()]
print(rows[-1][1] if rows else "0")' "$2"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R
for r in $(seq "$ROUNDS"); do
  line="kv types bench: round $r/$ROUNDS:"
  for t in $TESTS; do
    R[kv_$t]+=" $(rps "$KV_PORT" "$t" "$N")"
    R[aof_$t]+=" $(rps "$AOF_PORT" "$t" "$N")"
    line+=" $t ${R[kv_$t]##* } vs ${R[aof_$t]##* },"
  done
  echo "$line"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
KV_INFO=$(redis-cli -p "$KV_PORT" info persistence | tr -d '\r' | grep -E 'cosmos_(durability_level|group_commits|records_committed|compactions|log_live_bytes)' | tr '\n' ' ')
LLEN_KV=$(redis-cli -p "$KV_PORT" llen mylist)

mkdir -p "$RESULTS_DIR"
SAMPLES=""
for t in $TESTS; do SAMPLES+="kv_$t=${R[kv_$t]};aof_$t=${R[aof_$t]}|"; done
python3 - "$RESULTS_DIR/kv_types.json" "$QUICK" "$FSTYPE" "$KV_INFO" "$LOAD_START" "$LOAD_END" \
  "$N" "$LLEN_KV" "$SAMPLES" <<'PY'
import json, os, statistics, sys, datetime, platform
out, quick, fstype, kvinfo, load_start, load_end, n, llen, samples = sys.argv[1:10]
R = {}
for part in samples.strip("|").split("|"):
  for kv in part.split(";"):
    k, v = kv.split("=")
    R[k] = [float(x) for x in v.split()]
med = {k: statistics.median(v) for k, v in R.items()}
metrics = {}
for t in ["hset", "lpush", "sadd", "zadd", "incr"]:
  kv, base = med["kv_" + t], med["aof_" + t]
  metrics[t + "_rps_c50"] = {"value": round(kv, 1), "unit": "rps", "better": "higher",
                             "rounds": R["kv_" + t], "min": min(R["kv_" + t]),
                             "max": max(R["kv_" + t]),
                             "baseline": "redis_appendfsync_always_%s_rps_c50" % t,
                             "baseline_value": round(base, 1),
                             "ratio": round(kv / base, 3) if base else 0.0,
                             "baseline_rounds": R["aof_" + t], "baseline_min": min(R["aof_" + t]),
                             "baseline_max": max(R["aof_" + t])}
doc = {
  "suite": "kv_types", "quick": quick == "1",
  "host": {"cpus": os.cpu_count(), "kernel": platform.release(),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
  "metrics": metrics,
  "notes": [
    "cosmos-kv: default embedded backend, a pool file on %s (durability 'page'); every write acknowledged after its group commit" % fstype,
    "baseline: redis-server in the same run, appendonly yes + appendfsync always, same disk",
    "redis-benchmark -c 50 -n %s -t <test>, default 3-byte values, one key per test (lpush grows one list to %s elements over the run)" % (n, llen),
    "%d alternating rounds, medians; raw samples: %s" % (len(R["kv_hset"]), json.dumps(R)),
    "cosmos-kv counters after the run: " + kvinfo.strip(),
    "host load average (1/5/15 min) at start %s, at end %s (shared machine)" % (load_start, load_end),
  ],
}
json.dump(doc, open(out, "w"), indent=2)
print("%-16s %12s %12s %7s" % ("metric", "cosmos-kv", "redis-aof", "ratio"))
for k, m in metrics.items():
  print("%-16s %12.0f %12.0f %7.3f" % (k, m["value"], m["baseline_value"], m["ratio"]))
print("wrote", out)
PY
