#!/usr/bin/env python3
"""jem-gpu's CPU backend against PyTorch, in one run on one machine: one JEM iteration, one SGLD
step, and the peak resident memory of a process that runs only the JEM-iteration workload.

Each round runs, one after the other:
  1. `jem-bench --backend cpu --filter "SGLD step"`: the "model/jem_iteration ... (20 SGLD steps)" and
     "sampling/sgld_step ... (one SGLD step: ...)" benchmarks (one warm-up, --iters JEM iterations, 7 steps);
  2. jem_iteration.py (beside this file): the same JEM iterations, then its peak RSS
     (ru_maxrss), then the same SGLD step timing;
  3. `jem-bench --jem-memory --iterations 1`: a process that builds only the JEM trainer and runs
     two iterations, and reports its peak RSS (VmHWM) and what it allocates
so ours and PyTorch alternate and a burst of load from other processes hits both sides alike.
Prints per round and as the median over rounds the ratios ours / PyTorch of the JEM-iteration
time, the SGLD-step time and the peak RSS, with the 1-minute load average, and writes every
round as JSON (--json). The pooled medians (every timed iteration of a side) are printed too.

  make bench-compare                                   # venv with torch, build, this script
  python compare.py --jem-bench .build/release/jem-bench --rounds 4 --iters 3
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
    # "SGLD step" matches both "model/jem_iteration ... (20 SGLD steps)" and
    # "sampling/sgld_step ... (one SGLD step: fwd + d/dx + update)".
    cmd = [a.jem_bench, "--backend", "cpu", "--filter", "SGLD step", "--model", "wrn-10-2",
           "--batch", "64", "--iterations", str(a.iters), "--json", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if a.quiet else None)
    with open(out) as fh:
        doc = json.load(fh)
    jem = [r for r in doc["results"] if "jem_iteration" in r["name"]]
    step = [r for r in doc["results"] if "sgld_step" in r["name"]]
    if not jem or not step:
        sys.exit("jem-bench reported no JEM iteration or SGLD step result")
    return jem[0], step[0], doc.get("gemm_ceiling_gflops")


def run_ours_memory(a, scratch):
    out = os.path.join(scratch, "ours-memory.json")
    cmd = [a.jem_bench, "--jem-memory", "--model", "wrn-10-2", "--batch", "64", "--iterations", "1",
           "--json", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if a.quiet else None)
    with open(out) as fh:
        return json.load(fh)


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
    p.add_argument("--rounds", type=int, default=4, help="ours/PyTorch pairs, alternating")
    p.add_argument("--iters", type=int, default=3, help="timed iterations per run (after 1 warm-up)")
    p.add_argument("--json", default="bench-compare.json")
    p.add_argument("--quiet", action="store_true", help="hide the two programs' own output")
    a = p.parse_args()
    if a.rounds < 1 or a.iters < 1:
        p.error("--rounds and --iters must be >= 1")

    ours, torch_s, ours_step, torch_step, rounds = [], [], [], [], []
    load = [os.getloadavg()[0]]
    traffic, torch_meta, allocations, ceilings = {}, {}, [], []
    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        for r in range(a.rounds):
            load_before = os.getloadavg()
            o, os_, ceiling = run_ours(a, scratch)
            t = run_torch(a, scratch)
            m = run_ours_memory(a, scratch)
            load.append(os.getloadavg()[0])
            ours += o["all_s"]
            torch_s += t["all_s"]
            ours_step += os_["all_s"]
            torch_step += t["sgld_step"]["all_s"]
            ceilings.append(ceiling)
            allocations = m["allocations"]
            traffic = {k: o[k] for k in o if k.endswith("_per_iteration")}
            torch_meta = {"torch": t["torch"], "gflop": t["gflop"]}
            row = {"ours_median_s": o["median_s"], "torch_median_s": t["median_s"],
                   "ours_cpu_median_s": o.get("cpu_median_s"), "torch_cpu_median_s": t.get("cpu_median_s"),
                   "cpu_ratio": (o["cpu_median_s"] / t["cpu_median_s"]
                                 if o.get("cpu_median_s") and t.get("cpu_median_s") else None),
                   "ratio": o["median_s"] / t["median_s"],
                   "ours_sgld_step_median_s": os_["median_s"], "torch_sgld_step_median_s": t["sgld_step"]["median_s"],
                   "sgld_step_ratio": os_["median_s"] / t["sgld_step"]["median_s"],
                   "ours_peak_rss_bytes": m["peak_rss_bytes"], "torch_peak_rss_bytes": t["peak_rss_bytes"],
                   "memory_ratio": m["peak_rss_bytes"] / t["peak_rss_bytes"],
                   "gemm_ceiling_gflops": ceiling,
                   "ours_jem_fraction_of_gemm_ceiling": o.get("fraction_of_gemm_ceiling"),
                   "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())}
            rounds.append(row)
            print(f"round {r + 1}: JEM iteration ours {o['median_s']:.3f} s (cpu {o.get('cpu_median_s', 0):.3f} s), "
                  f"PyTorch {t['median_s']:.3f} s (cpu {t.get('cpu_median_s') or 0:.3f} s), ratio {row['ratio']:.2f} "
                  f"(process CPU time {row['cpu_ratio'] or 0:.2f}); SGLD step ours "
                  f"{os_['median_s'] * 1e3:.1f} ms, PyTorch {t['sgld_step']['median_s'] * 1e3:.1f} ms, ratio "
                  f"{row['sgld_step_ratio']:.2f}; peak RSS ours {m['peak_rss_bytes'] / 1e6:.0f} MB, PyTorch "
                  f"{t['peak_rss_bytes'] / 1e6:.0f} MB, ratio {row['memory_ratio']:.2f}; ours at "
                  f"{100 * (o.get('fraction_of_gemm_ceiling') or 0):.0f}% of the GEMM ceiling ({ceiling or 0:.0f} GFLOP/s); load "
                  f"{load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)

    mine, theirs = summary(ours), summary(torch_s)
    ratio = mine["median_s"] / theirs["median_s"]
    medians = {k: statistics.median(r[k] for r in rounds) for k in ("ratio", "sgld_step_ratio", "memory_ratio")}
    cpu_ratios = [r["cpu_ratio"] for r in rounds if r["cpu_ratio"]]
    medians["cpu_ratio"] = statistics.median(cpu_ratios) if cpu_ratios else None
    # Each round's own ceiling: effective GFLOP/s of the JEM iteration over that run's GEMM speed.
    fractions = [r["ours_jem_fraction_of_gemm_ceiling"] for r in rounds if r["ours_jem_fraction_of_gemm_ceiling"]]
    median_fraction = statistics.median(fractions) if fractions else None
    gflop = torch_meta["gflop"]
    result = {
        "workload": "one official JEM iteration, wrn-10-2, batch 64, 3x32x32, 20 SGLD steps, 2 threads",
        "gflop_per_iteration": gflop, "jem_gpu_cpu": mine, "pytorch": {**theirs, "version": torch_meta["torch"]},
        "ratio_ours_over_pytorch": ratio,
        "median_round_ratio_jem_iteration": medians["ratio"],
        "median_round_ratio_sgld_step": medians["sgld_step_ratio"],
        "median_round_ratio_peak_rss": medians["memory_ratio"],
        "median_round_ratio_jem_iteration_process_cpu": medians["cpu_ratio"],
        "median_round_fraction_of_gemm_ceiling": median_fraction,
        "sgld_step": {"jem_gpu_cpu": summary(ours_step), "pytorch": summary(torch_step)},
        "ours_allocations": allocations, "gemm_ceiling_gflops": ceilings,
        "rounds": rounds, "loadavg_1min": load,
        "cpu_count": os.cpu_count(), "wall_s": time.time() - started, **traffic,
    }
    print()
    print(f"{'JEM iteration':28s}{'median':>9s}{'min':>9s}{'max':>9s}{'n':>4s}{'GFLOP/s':>9s}")
    for name, s in (("jem-gpu CPU backend", mine), (f"PyTorch {torch_meta['torch']}", theirs)):
        print(f"{name:28s}{s['median_s']:9.3f}{s['min_s']:9.3f}{s['max_s']:9.3f}{s['n']:4d}"
              f"{gflop / s['median_s']:9.1f}")
    print(f"pooled ratio ours / PyTorch: {ratio:.2f}")
    for key, label in (("ratio", "JEM iteration time"), ("cpu_ratio", "JEM iteration process CPU time"),
                       ("sgld_step_ratio", "SGLD step time"), ("memory_ratio", "peak RSS (JEM-iteration process)")):
        if medians[key] is None:
            continue
        print(f"ratio ours / PyTorch, {label:34s} median {medians[key]:.2f}  (rounds: "
              f"{', '.join(f'{r[key]:.2f}' for r in rounds if r[key])})")
    if median_fraction is not None:
        print(f"ours, effective GFLOP/s / the round's GEMM ceiling   median {100 * median_fraction:.0f}%  (rounds: "
              f"{', '.join(f'{100 * f:.0f}%' for f in fractions)})")
    print(f"1-minute load average during the runs: {', '.join(f'{x:.1f}' for x in load)} on {os.cpu_count()} CPUs")
    print(json.dumps({k: result[k] for k in ("ratio_ours_over_pytorch", "median_round_ratio_jem_iteration",
                                             "median_round_ratio_sgld_step", "median_round_ratio_peak_rss",
                                             "gflop_per_iteration")}
                     | {"ours_median_s": mine["median_s"], "pytorch_median_s": theirs["median_s"]}))
    with open(a.json, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
