"""Benchmark of the Numba attention kernel against a plain numpy N x N softmax baseline.

What is measured, for targets = sources = N random unit vectors in R^d, w = 1/N, random
Q, K, V (entries N(0, 1/d)), beta = 1, softmax attention (SA):

* throughput in pairs per second, N^2 / (best of 3 wall times after one warm-up call), for
  ``continuum.kernels.attention_field`` and for the numpy baseline below;
* the ratio kernel/numpy of the two throughputs, measured in the same run;
* the max relative difference of the two fields, max|X_kernel - X_numpy| / max|X_numpy|
  (a correctness sanity check, not a benchmark);
* the peak memory increase (ru_maxrss after minus before the case, MiB). Each
  (implementation, N, d) case runs in a fresh subprocess that first imports everything and
  compiles/warms up on a tiny problem, so the peak belongs to that case alone (Numba's
  allocations are invisible to tracemalloc, the process high-water mark is not).

Both implementations get the same number of cores: the subprocess sets OMP/OPENBLAS/MKL/
NUMBA_NUM_THREADS to the same value (1, and 2 unless --quick).

Why ratios: the machine is shared and noisy, so absolute pairs/s vary from run to run; the
ratio of two implementations measured back to back under the same conditions is the figure
to compare across runs.

Usage: python benchmarks/kernel.py [--quick] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NS, DS, REPEATS = (1024, 4096, 16384), (3, 64), 3
ROOT = Path(__file__).resolve().parent.parent


def problem(n: int, d: int, seed: int = 0):
    """Targets = sources (n random unit vectors), weights 1/n, and a random SA model."""
    from continuum.model import Attention
    rng = np.random.default_rng([seed, n, d])
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    Q, K, V = (rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(3))
    return x, np.full(n, 1.0 / n), Attention(beta=1.0, d=d, Q=Q, K=K, V=V, normalized=True)


def numpy_field(targets, sources, weights, model):
    """Plain numpy reference: one N x N score matrix, transformed in place."""
    S = (model.beta * (targets @ model.A)) @ sources.T
    S -= S.max(axis=1, keepdims=True)
    np.exp(S, out=S)
    S *= weights
    out = (S @ sources) @ model.V.T / S.sum(axis=1)[:, None]
    return out - np.einsum("ij,ij->i", targets, out)[:, None] * targets


def run_one(impl: str, n: int, d: int, save: str | None) -> dict:
    """Hidden --one mode: time one case in this (fresh) process and report its peak memory."""
    from continuum.kernels import attention_field
    func = attention_field if impl == "kernel" else numpy_field
    xs, ws, ms = problem(64, d)
    func(xs, xs, ws, ms)  # import, compile, start thread pools before the baseline
    x, w, model = problem(n, d)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = func(x, x, w, model)  # warm-up call on the real problem
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = func(x, x, w, model)
        times.append(time.perf_counter() - t0)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if save:
        np.save(save, out)
    return {"best_s": min(times), "times_s": times, "pairs_per_s": n * n / min(times),
            "peak_mib": (rss1 - rss0) / 1024}


def spawn(impl: str, n: int, d: int, threads: int, save: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    for var in ("OMP", "OPENBLAS", "MKL", "NUMBA"):
        env[f"{var}_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, __file__, "--one", impl, str(n), str(d), "--save", save]
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{impl} N={n} d={d} threads={threads} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import numba
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__,
            "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip()}


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def table(info: dict, rows: list[dict], threads: int) -> str:
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores; numpy {info['numpy']} "
             f"({info['blas']}), numba {info['numba']}; threads = {threads}", "",
             "| N | d | kernel pairs/s | numpy pairs/s | kernel/numpy | max rel diff "
             "| kernel peak MiB | numpy peak MiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in (r for r in rows if r["threads"] == threads):
        k, p = r["kernel"], r["numpy"]
        lines.append(
            f"| {r['N']} | {r['d']} | {k['pairs_per_s']:.3g} | "
            f"{fmt(p and p['pairs_per_s'], '.3g')} | {fmt(r['ratio'], '.2f')} | "
            f"{fmt(r['max_rel_diff'], '.1e')} | {k['peak_mib']:.0f} | "
            f"{fmt(p and p['peak_mib'], '.0f')} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N in {1024, 4096}, threads=1 only")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "kernel-results.json"))
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        impl, n, d = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(run_one(impl, n, d, args.save)))
        return
    ns = NS[:2] if args.quick else NS
    thread_counts = (1,) if args.quick else (1, 2)
    info, rows = machine(), []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in thread_counts:
            for n in ns:
                for d in DS:
                    res = {}
                    for impl in ("kernel", "numpy"):
                        if impl == "numpy" and args.quick and n >= 16384:
                            res[impl] = None
                            continue
                        res[impl] = spawn(impl, n, d, threads, f"{tmp}/{impl}.npy")
                    ratio = diff = None
                    if res["numpy"]:
                        ratio = res["kernel"]["pairs_per_s"] / res["numpy"]["pairs_per_s"]
                        xk, xn = np.load(f"{tmp}/kernel.npy"), np.load(f"{tmp}/numpy.npy")
                        diff = float(np.max(np.abs(xk - xn)) / np.max(np.abs(xn)))
                    rows.append({"threads": threads, "N": n, "d": d, **res,
                                 "ratio": ratio, "max_rel_diff": diff})
                    print(f"  threads={threads} N={n} d={d} done", file=sys.stderr, flush=True)
    for threads in thread_counts:
        print(table(info, rows, threads) + "\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": info, "repeats": REPEATS, "beta": 1.0, "model": "SA",
                   "quick": args.quick, "results": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
