"""Benchmark of the DOLFINx DG sphere solver: cost of one SSP-RK3 step against the mesh level,
split into the nonlocal field (quadrature measure + field at the vertices, by the direct Numba
kernel and by the spherical-harmonic expansion of continuum.sphere.harmonic, whose tables are
built once per mesh and not timed here) and the FEM part (DOLFINx vector assembly +
block-diagonal inverse mass, Zhang-Shu limiter and cell averages). The kernel/harmonic ratio is
measured in the same run.

Each stage of a step does all three; a step is 3 stages. Times are best of 5 after a warm-up,
one thread (OMP/NUMBA_NUM_THREADS=1 so that the split is not distorted by the two-core
machine's noise). The ratio field/FEM is the machine-independent figure: it says where the
time goes and how it scales (field ~ cells x vertices, FEM ~ cells).

Usage: python benchmarks/sphere.py [--levels 2 3 4 5] [--out FILE.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def best_of(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(level):
    from continuum import Attention
    from continuum.kernels import attention_field
    from continuum.sphere.dg import SphereDG
    from continuum.sphere.harmonic import HarmonicField

    model = Attention(beta=1.0, d=3)
    dg = SphereDG(level)
    state = dg.interpolate(lambda p: (1 + 0.5 * p[:, 2]) / (4 * np.pi))

    def field():
        pts, w = dg.quadrature_measure(state)
        dg.set_velocity(attention_field(dg.velocity_targets, pts, w / w.sum(), model,
                                        method="direct", check=False))

    pts0, _ = dg.quadrature_measure(state)
    harmonic = HarmonicField(dg.velocity_targets, pts0, model)

    def field_harmonic():
        pts, w = dg.quadrature_measure(state)
        dg.set_velocity(harmonic(w / w.sum()))

    field()
    t_field = best_of(field)
    t_harm = best_of(field_harmonic)
    t_rhs = best_of(lambda: dg.rhs(state))
    t_limit = best_of(lambda: dg.limit(state))  # limiter + cell averages
    return {"level": level, "cells": dg.n_owned_cells, "vertices": len(dg.velocity_targets),
            "field_ms": 1e3 * t_field, "assembly_mass_ms": 1e3 * t_rhs,
            "limiter_averages_ms": 1e3 * t_limit,
            "step_ms": 3e3 * (t_field + t_rhs + t_limit),
            "field_share": t_field / (t_field + t_rhs + t_limit),
            "harmonic_field_ms": 1e3 * t_harm, "harmonic_L": harmonic.L,
            "kernel_over_harmonic": t_field / t_harm,
            "step_harmonic_ms": 3e3 * (t_harm + t_rhs + t_limit)}


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[2, 3, 4, 5])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/sphere-results.json"))
    args = parser.parse_args()
    from mpi4py import MPI  # noqa: F401  (before dolfinx)

    rows = [measure(level) for level in args.levels]
    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores; one thread; DG1, SA beta=1\n")
    print("| level | cells | vertices | field (ms) | assembly + M^-1 (ms) | limiter + averages "
          "(ms) | step = 3 stages (ms) | field share | harmonic field (ms) | kernel / harmonic "
          "| step, harmonic (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['level']} | {r['cells']} | {r['vertices']} | {r['field_ms']:.2f} | "
              f"{r['assembly_mass_ms']:.2f} | {r['limiter_averages_ms']:.2f} | "
              f"{r['step_ms']:.1f} | {r['field_share']:.2f} | {r['harmonic_field_ms']:.2f} | "
              f"{r['kernel_over_harmonic']:.1f}x | {r['step_harmonic_ms']:.1f} |")
    if len(rows) > 2:
        cells = [r["cells"] for r in rows[-3:]]
        for key in ("field_ms", "harmonic_field_ms", "assembly_mass_ms"):
            p = np.polyfit(np.log(cells), np.log([r[key] for r in rows[-3:]]), 1)[0]
            print(f"\n{key}: time ~ cells^{p:.2f} over the last three levels")
    args.out.write_text(json.dumps({"machine": cpu_name(), "rows": rows}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
