"""Benchmark: a MultiHead field of H heads costs about H single-head fields.

What is measured, in one run on one thread (OMP/NUMBA_NUM_THREADS = 1): the time of
``attention_field(x, x, w, MultiHead(heads))`` against the sum of the times of
``attention_field(x, x, w, head)`` over its heads, for H in {1, 2, 4, 8} random heads
(``continuum.model.random_model``: iid N(0, 1/d) entries, beta = 1, SA), after one
warm-up, the two measured back to back in each of 7 repeats, minimum of each (the S^2
expansion's kernel matrix of a general Q^T K is built once per head at the
warm-up), on two paths:

* the direct sum (Numba, d = 3, N = 4096 tokens: targets = sources, as in a particle step);
* the S^2 harmonic expansion (``method="harmonic"``, N = 10^5 tokens).

The ratio t(MultiHead) / sum_h t(head) is the figure to compare across runs (the machine is
shared; the load average before the run is recorded): 1 means the heads cost exactly what
they cost alone (the MultiHead field is the per-head loop plus H - 1 additions of (N, d)
arrays).

Usage: python benchmarks/multihead.py [--quick] [--out FILE.json]
(--quick: H <= 4, N = 2048 and 2 * 10^4.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(func) -> float:
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def interleaved(together, alone, repeats=7):
    """(min time of ``together``, min over repeats of the summed times of ``alone``), the two
    measured back to back in every repeat (so that a burst of load hits both), after one
    warm-up of each."""
    together()
    for f in alone:
        f()
    t_together, t_alone = [], []
    for _ in range(repeats):
        t_together.append(timed(together))
        t_alone.append(sum(timed(f) for f in alone))
    return min(t_together), min(t_alone)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "multihead-results.json")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    import numpy as np

    from continuum import MultiHead
    from continuum.geometry import uniform_points
    from continuum.kernels import attention_field
    from continuum.model import random_model

    rng = np.random.default_rng(0)
    counts = (1, 2, 4) if args.quick else (1, 2, 4, 8)
    paths = {"direct": 2048 if args.quick else 4096,
             "harmonic": 20_000 if args.quick else 100_000}
    load = os.getloadavg()
    result = {"machine": platform.processor() or platform.machine(), "node": platform.node(),
              "cpus": os.cpu_count(), "threads": 1, "loadavg_before": load, "rows": []}
    print(f"machine: {result['machine']} ({result['cpus']} cpus), one thread, load average "
          f"{load[0]:.2f}")
    print("| path | N | H | MultiHead (s) | sum of heads (s) | ratio |")
    print("|---|---|---|---|---|---|")
    for path, n in paths.items():
        x = uniform_points(n, 3, rng)
        w = np.full(n, 1.0 / n)
        for H in counts:
            heads = [random_model(3, beta=1.0, seed=100 + h) for h in range(H)]
            model = MultiHead(heads)
            together, alone = interleaved(
                lambda: attention_field(x, x, w, model, method=path),
                [lambda head=head: attention_field(x, x, w, head, method=path)
                 for head in heads])
            row = {"path": path, "N": n, "H": H, "multihead_s": together,
                   "sum_of_heads_s": alone, "ratio": together / alone}
            result["rows"].append(row)
            print(f"| {path} | {n} | {H} | {together:.4f} | {alone:.4f} | "
                  f"{together / alone:.3f} |")
    result["loadavg_after"] = os.getloadavg()
    args.out.write_text(json.dumps(result, indent=2))
    print(f"load average after: {result['loadavg_after'][0]:.2f}; written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
