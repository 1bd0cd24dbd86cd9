"""Benchmark: a causal particle step against an unmasked one (issue 24).

What is measured, for N random unit vectors in R^d, w = 1/N, random Q, K, V (entries
N(0, 1/d)), beta = 1, SA and USA: the best of 5 wall times (after a warm-up call) of one RK4
step of ``particles.simulate`` (4 field evaluations, ``method="rk4"``, ``field="direct"``)
with ``Attention(..., causal=True)`` and with the same model unmasked, interleaved in the
same run, and their ratio causal / unmasked (the figure to compare across runs; the causal
sum visits about half the pairs, so about 0.5 is expected and anything above 1 refutes the
claim "a causal step costs no more than an unmasked one"). d = 3 runs the blocked kernel,
d = 64 the BLAS one. Threads: OMP/NUMBA_NUM_THREADS as set in the environment (1 by the
usage line). The load average before and after is recorded.

Usage: OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/causal.py [--quick] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def problem(n, d, normalized, seed=0):
    from continuum import Attention
    rng = np.random.default_rng([seed, n, d])
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    Q, K, V = (rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(3))
    kw = dict(beta=1.0, d=d, Q=Q, K=K, V=V, normalized=normalized)
    return x, Attention(**kw), Attention(**kw, causal=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "causal-results.json"))
    args = parser.parse_args(argv)
    ns = (1024, 4096) if args.quick else (1024, 4096, 16384)
    from particles import simulate

    repeats = 5
    load0 = os.getloadavg()
    rows = []
    for d in (3, 64):
        for n in ns:
            for normalized in (True, False):
                x, plain, causal = problem(n, d, normalized)
                for model in (plain, causal):  # compile and warm up
                    simulate(model, x, 0.01, times=[0.0, 0.01], dt=0.01, field="direct")
                times = {"unmasked": [], "causal": []}
                for _ in range(repeats):  # interleaved: both see the same machine state
                    for name, model in (("unmasked", plain), ("causal", causal)):
                        t0 = time.perf_counter()
                        simulate(model, x, 0.01, times=[0.0, 0.01], dt=0.01, field="direct")
                        times[name].append(time.perf_counter() - t0)
                best = {k: min(v) for k, v in times.items()}
                row = {"d": d, "N": n, "model": "SA" if normalized else "USA",
                       "unmasked_s": best["unmasked"], "causal_s": best["causal"],
                       "ratio": best["causal"] / best["unmasked"]}
                rows.append(row)
                print(f"d={d:3d} N={n:6d} {row['model']:3s} unmasked {best['unmasked']:.4f} s"
                      f"  causal {best['causal']:.4f} s  ratio {row['ratio']:.3f}", flush=True)
    record = {"machine": {"cpu": platform.processor() or platform.machine(),
                          "cores": os.cpu_count(), "python": platform.python_version()},
              "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                         "NUMBA_NUM_THREADS")},
              "load_average_before": load0, "load_average_after": os.getloadavg(),
              "repeats": repeats, "results": rows}
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(f"load average before {load0}, after {os.getloadavg()}")


if __name__ == "__main__":
    main()
