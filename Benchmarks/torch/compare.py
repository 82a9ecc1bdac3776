#!/usr/bin/env python3
"""One JEM iteration, jem-gpu's CPU backend against PyTorch, in one run on one machine.

Runs `jem-bench --backend cpu --filter jem_iteration` and jem_iteration.py (beside this file)
alternately: ours, PyTorch, ours, PyTorch, ... (--rounds pairs), so that a burst of load from
other processes hits both sides alike. Each run does one warm-up iteration and --iters timed
ones; the medians pool every timed iteration of a side. Prints both times and the ratio
ours / PyTorch, and writes them as JSON (--json).

  make bench-compare                                   # venv with torch, build, this script
  python compare.py --jem-bench .build/release/jem-bench --rounds 3 --iters 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_ours(a, scratch):
    out = os.path.join(scratch, "ours.json")
    cmd = [a.jem_bench, "--backend", "cpu", "--filter", "jem_iteration", "--model", "wrn-10-2",
           "--batch", "64", "--iterations", str(a.iters), "--json", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if a.quiet else None)
    with open(out) as fh:
        doc = json.load(fh)
    rows = [r for r in doc["results"] if "jem_iteration" in r["name"]]
    if not rows:
        sys.exit("jem-bench reported no JEM iteration result")
    return rows[0]


def run_torch(a, scratch):
    out = os.path.join(scratch, "torch.json")
    cmd = [a.python, os.path.join(HERE, "jem_iteration.py"), "--iters", str(a.iters), "--warmup", "1",
           "--threads", "2", "--json", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if a.quiet else None)
    with open(out) as fh:
        return json.load(fh)


def summary(seconds):
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds),
            "n": len(seconds), "all_s": seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jem-bench", default=".build/release/jem-bench")
    p.add_argument("--python", default=sys.executable, help="the Python that has torch")
    p.add_argument("--rounds", type=int, default=2, help="ours/PyTorch pairs, alternating")
    p.add_argument("--iters", type=int, default=3, help="timed iterations per run (after 1 warm-up)")
    p.add_argument("--json", default="bench-compare.json")
    p.add_argument("--quiet", action="store_true", help="hide the two programs' own output")
    a = p.parse_args()
    if a.rounds < 1 or a.iters < 1:
        p.error("--rounds and --iters must be >= 1")

    ours, torch_s, rounds = [], [], []
    load = [os.getloadavg()[0]]
    traffic, torch_meta = {}, {}
    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        for r in range(a.rounds):
            o = run_ours(a, scratch)
            t = run_torch(a, scratch)
            load.append(os.getloadavg()[0])
            ours += o["all_s"]
            torch_s += t["all_s"]
            traffic = {k: o[k] for k in o if k.endswith("_per_iteration")}
            torch_meta = {"torch": t["torch"], "gflop": t["gflop"]}
            rounds.append({"ours_median_s": o["median_s"], "torch_median_s": t["median_s"],
                           "ratio": o["median_s"] / t["median_s"]})
            print(f"round {r + 1}: ours {o['median_s']:.3f} s, PyTorch {t['median_s']:.3f} s, "
                  f"ratio {o['median_s'] / t['median_s']:.2f}", flush=True)

    mine, theirs = summary(ours), summary(torch_s)
    ratio = mine["median_s"] / theirs["median_s"]
    gflop = torch_meta["gflop"]
    result = {
        "workload": "one official JEM iteration, wrn-10-2, batch 64, 3x32x32, 20 SGLD steps, 2 threads",
        "gflop_per_iteration": gflop, "jem_gpu_cpu": mine, "pytorch": {**theirs, "version": torch_meta["torch"]},
        "ratio_ours_over_pytorch": ratio, "rounds": rounds, "loadavg_1min": load,
        "cpu_count": os.cpu_count(), "wall_s": time.time() - started, **traffic,
    }
    print()
    print(f"{'':28s}{'median':>9s}{'min':>9s}{'max':>9s}{'n':>4s}{'GFLOP/s':>9s}")
    for name, s in (("jem-gpu CPU backend", mine), (f"PyTorch {torch_meta['torch']}", theirs)):
        print(f"{name:28s}{s['median_s']:9.3f}{s['min_s']:9.3f}{s['max_s']:9.3f}{s['n']:4d}"
              f"{gflop / s['median_s']:9.1f}")
    print(f"ratio ours / PyTorch: {ratio:.2f}   (1-minute load average during the runs: "
          f"{', '.join(f'{x:.1f}' for x in load)} on {os.cpu_count()} CPUs)")
    print(json.dumps({k: result[k] for k in ("ratio_ours_over_pytorch", "gflop_per_iteration")}
                     | {"ours_median_s": mine["median_s"], "pytorch_median_s": theirs["median_s"]}))
    with open(a.json, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
