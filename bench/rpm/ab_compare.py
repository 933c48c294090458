#!/usr/bin/env python3
"""A/B of two rpm_bench builds (e.g. before and after a data-path change):
runs A B A B ... (--pairs pairs, each rpm_bench --quick unless --full) and
writes one JSON in the bench/results shape: for each metric the median of B
as value, the median of A as baseline, their ratio and every round.

  bench/rpm/ab_compare.py --a BASE/bench/rpm/rpm_bench --b NEW/bench/rpm/rpm_bench \
      --name metrics_overhead --out bench/results/metrics_overhead.json
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import tempfile

METRICS = ["write_flush_64B_p50_us", "write_flush_4KB_p50_us", "read_4KB_p50_us",
           "write_flush_4KB_ops"]


def run(binary, quick, mtu):
    with tempfile.TemporaryDirectory() as results, tempfile.TemporaryDirectory() as disk:
        cmd = [binary, "--results", results, "--shm-dir", "/dev/shm", "--disk-dir", disk,
               "--mtu", str(mtu)]
        if quick:
            cmd.append("--quick")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(results, "rpm.json")) as f:
            return json.load(f)["metrics"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True, help="baseline rpm_bench binary")
    p.add_argument("--b", required=True, help="rpm_bench binary under test")
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--mtu", type=int, default=8972)
    p.add_argument("--full", action="store_true")
    p.add_argument("--note", default="")
    o = p.parse_args()
    rounds = {"a": {m: [] for m in METRICS}, "b": {m: [] for m in METRICS}}
    units = {}
    for i in range(o.pairs):
        for side, binary in (("a", o.a), ("b", o.b)):
            m = run(binary, not o.full, o.mtu)
            for k in METRICS:
                rounds[side][k].append(m[k]["value"])
                units[k] = (m[k].get("unit", ""), m[k].get("better", ""))
            print(f"pair {i + 1}/{o.pairs} {side}: " +
                  ", ".join(f"{k}={m[k]['value']:.2f}" for k in METRICS), flush=True)
    out = {"suite": o.name, "quick": not o.full,
           "host": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "date": datetime.datetime.utcnow().isoformat() + "Z",
                    "load_average": os.getloadavg()},
           "method": f"rpm_bench A/B, {o.pairs} alternating pairs (A B A B ...), mtu {o.mtu}; "
                     "value = median of B, baseline_value = median of A",
           "a": o.a, "b": o.b, "note": o.note, "metrics": {}}
    for k in METRICS:
        a = statistics.median(rounds["a"][k])
        b = statistics.median(rounds["b"][k])
        out["metrics"][k] = {"value": b, "unit": units[k][0], "better": units[k][1],
                             "baseline": k + "_without", "baseline_value": a,
                             "ratio": b / a if a else None,
                             "rounds": rounds["b"][k], "baseline_rounds": rounds["a"][k]}
    with open(o.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"wrote {o.out}")


if __name__ == "__main__":
    main()
