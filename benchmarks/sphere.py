"""Benchmark of the DOLFINx DG sphere solver: cost of one SSP-RK3 step against the mesh level,
split into the nonlocal field (quadrature measure + field at the vertices, by the direct Numba
kernel and by the spherical-harmonic expansion of continuum.sphere.harmonic: nonuniform
transforms, nothing tabulated) and the FEM part (right-hand side L(rho, u) + block-diagonal
inverse mass, Zhang-Shu limiter and cell averages). Also timed: the field evaluator the solver
builds once per mesh (harmonic.fixed_points_field: HarmonicTables for small meshes,
ZonalTransforms with the point angles computed once for larger ones; construction not timed),
and the right-hand side by DOLFINx's assembly of the form (SphereDG.assembled_rhs, the
reference the compiled kernels replaced), with their ratio. Ratios are measured in
the same run; above 10^9 vertex-cell pairs (level 6) the kernel is not timed (tens of seconds
per evaluation) but extrapolated from the level below as cells x vertices.

Each stage of a step does all three; a step is 3 stages. Times are best of 5 after a warm-up,
one thread (OMP/NUMBA_NUM_THREADS=1 so that the split is not distorted by the two-core
machine's noise). The ratio field/FEM is the machine-independent figure: it says where the
time goes and how it scales (field ~ cells x vertices, FEM ~ cells).

Usage: python benchmarks/sphere.py [--levels 4 5 6] [--out FILE.json]
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
    from continuum.sphere.harmonic import expansion_degree, fixed_points_field

    model = Attention(beta=1.0, d=3)
    dg = SphereDG(level)
    state = dg.interpolate(lambda p: (1 + 0.5 * p[:, 2]) / (4 * np.pi))

    def field():
        pts, w = dg.quadrature_measure(state)
        dg.set_velocity(attention_field(dg.velocity_targets, pts, w / w.sum(), model,
                                        method="direct", check=False))

    def field_harmonic():
        pts, w = dg.quadrature_measure(state)
        dg.set_velocity(attention_field(dg.velocity_targets, pts, w / w.sum(), model,
                                        method="harmonic", check=False))

    pts0, _ = dg.quadrature_measure(state)
    evaluator = fixed_points_field(model, dg.velocity_targets, pts0)  # once per mesh, untimed

    def field_solver():
        pts, w = dg.quadrature_measure(state)
        dg.set_velocity(evaluator(w / w.sum()))

    pairs = dg.n_owned_cells * len(dg.velocity_targets)
    t_field = best_of(field) if pairs <= 1e9 else float("nan")
    t_harm = best_of(field_harmonic)
    t_solver = best_of(field_solver)
    dg.set_velocity(np.cross(dg.velocity_targets, [0.3, -0.2, 1.0]))
    t_rhs = best_of(lambda: dg.rhs(state))
    t_assembled = best_of(lambda: dg.assembled_rhs(state))
    t_limit = best_of(lambda: dg.limit(state))  # limiter + cell averages
    return {"level": level, "cells": dg.n_owned_cells, "vertices": len(dg.velocity_targets),
            "field_ms": 1e3 * t_field, "assembly_mass_ms": 1e3 * t_rhs,
            "limiter_averages_ms": 1e3 * t_limit,
            "step_ms": 3e3 * (t_field + t_rhs + t_limit),
            "field_share": t_field / (t_field + t_rhs + t_limit),
            "harmonic_field_ms": 1e3 * t_harm, "solver_field_ms": 1e3 * t_solver,
            "solver_field": type(evaluator).__name__,
            "dolfinx_assembly_mass_ms": 1e3 * t_assembled,
            "dolfinx_over_compiled": t_assembled / t_rhs,
            "pairs": pairs,
            "harmonic_L": expansion_degree(model),
            "kernel_over_harmonic": t_field / t_harm,
            "step_harmonic_ms": 3e3 * (t_harm + t_rhs + t_limit),
            "step_solver_ms": 3e3 * (t_solver + t_rhs + t_limit)}


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
    parser.add_argument("--levels", type=int, nargs="+", default=[4, 5, 6])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/sphere-results.json"))
    args = parser.parse_args()
    from mpi4py import MPI  # noqa: F401  (before dolfinx)

    rows = [measure(level) for level in args.levels]
    for prev, row in zip(rows, rows[1:]):  # untimed kernel: scale the level below by pairs
        if np.isnan(row["field_ms"]) and not np.isnan(prev["field_ms"]):
            row["field_ms"] = prev["field_ms"] * row["pairs"] / prev["pairs"]
            row["field_ms_extrapolated"] = True
            fem = row["assembly_mass_ms"] + row["limiter_averages_ms"]
            row["step_ms"] = 3 * (row["field_ms"] + fem)
            row["field_share"] = row["field_ms"] / (row["field_ms"] + fem)
            row["kernel_over_harmonic"] = row["field_ms"] / row["harmonic_field_ms"]
    load = os.getloadavg()
    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores; one thread; DG1, SA beta=1; "
          f"load average {load[0]:.2f} (1 min) at the end\n")
    print("| level | cells | vertices | field (ms) | RHS + M^-1 (ms) | limiter + averages "
          "(ms) | step = 3 stages (ms) | field share | harmonic field (ms) | kernel / harmonic "
          "| solver's field (ms) | solver's step (ms) | DOLFINx RHS + M^-1 (ms) | "
          "DOLFINx / compiled |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['level']} | {r['cells']} | {r['vertices']} | {r['field_ms']:.2f} | "
              f"{r['assembly_mass_ms']:.2f} | {r['limiter_averages_ms']:.2f} | "
              f"{r['step_ms']:.1f} | {r['field_share']:.2f} | {r['harmonic_field_ms']:.2f} | "
              f"{r['kernel_over_harmonic']:.1f}x | {r['solver_field_ms']:.2f} "
              f"({r['solver_field']}) | {r['step_solver_ms']:.1f} | "
              f"{r['dolfinx_assembly_mass_ms']:.2f} | {r['dolfinx_over_compiled']:.1f}x |")
    if len(rows) > 2:
        cells = [r["cells"] for r in rows[-3:]]
        for key in ("field_ms", "harmonic_field_ms", "assembly_mass_ms"):
            p = np.polyfit(np.log(cells), np.log([r[key] for r in rows[-3:]]), 1)[0]
            print(f"\n{key}: time ~ cells^{p:.2f} over the last three levels")
    args.out.write_text(json.dumps({"machine": cpu_name(), "loadavg": load, "rows": rows},
                                   indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
