"""Benchmark of the spectral S^2 solver (continuum.sphere.spectral): cost of one right-hand
side at band limits L = 32, 64, 128, split into the field at the padded grid's nodes and the
rest (syntheses, flux, adjoint spin-1 transform), for

* a zonal kernel (SA, Q = K = V = I, beta = 1): the Funk-Hecke path (exact in coefficient
  space, no rotation);
* a rotated zonal kernel (K = 2 R, R a random rotation): the same plus a Wigner rotation;
* a general kernel (random Q, K, V, beta = 1): ``attention_field`` at the nodes with the
  quadrature measure (its "auto" path: the expansion's transforms at these sizes);

and, as the baseline measured in the same run, the direct sum for the same zonal field on the
same nodes (``attention_field(method="direct")``) at L = 32 and 64 (at L = 128, 5.5e9 pairs,
it is extrapolated by nodes^2 from L = 64). The ratios direct / Funk-Hecke field and general /
zonal RHS are the machine-independent figures. Best of 5 after a warm-up, one thread.
For scale: the unknowns are (L + 1)^2 coefficients (1089, 4225, 16641); the DG solver's level
5 has 20480 cells x 3 (DG1) unknowns.

Usage: python benchmarks/sphere_spectral.py [--band-limits 32 64 128] [--out FILE.json]
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


def models():
    from continuum import Attention

    rng = np.random.default_rng(0)
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    R = q * np.sign(np.diag(r)) * np.sign(np.linalg.det(q * np.sign(np.diag(r))))
    Q, K, V = (np.eye(3) + 0.3 * rng.standard_normal((3, 3)) for _ in range(3))
    return {"zonal": Attention(beta=1.0, d=3),
            "rotated": Attention(beta=1.0, d=3, K=2.0 * R),
            "general": Attention(beta=1.0, d=3, Q=Q, K=K, V=V)}


def measure(L):
    from continuum.kernels import attention_field
    from continuum.sphere.harmonic import from_real
    from continuum.sphere.spectral import SphereSpectral, initial_coefficients

    row = {"L": L, "unknowns": (L + 1) ** 2}
    a, _ = initial_coefficients(lambda p: (1 + 0.5 * p[:, 2] + 0.2 * p[:, 0] * p[:, 1])
                                / (4 * np.pi), L)
    for name, model in models().items():
        disc = SphereSpectral(model, L)
        alm = from_real(a, L)
        rho = disc.grid.points[:, 2] * 0.5 / (4 * np.pi) + 1 / (4 * np.pi)
        row[f"{name}_rhs_ms"] = 1e3 * best_of(lambda: disc.rhs(a))
        row[f"{name}_field_ms"] = 1e3 * best_of(lambda: disc.field_at_nodes(alm, rho))
        row[f"{name}_path"] = disc.path
        row["nodes"] = len(disc.grid.points)
        if name == "zonal":
            if L <= 64:
                pts, w = disc.grid.points, rho * disc.grid.weights
                row["direct_field_ms"] = 1e3 * best_of(
                    lambda: attention_field(pts, pts, w, model, method="direct",
                                            check=False), repeats=1)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--band-limits", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "sphere_spectral-results.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = [measure(L) for L in args.band_limits]
    for prev, row in zip(rows, rows[1:]):
        if "direct_field_ms" not in row and "direct_field_ms" in prev:
            row["direct_field_ms"] = prev["direct_field_ms"] * (row["nodes"] / prev["nodes"]) ** 2
            row["direct_extrapolated"] = True
    for row in rows:
        row["direct_over_funk_hecke_field"] = row["direct_field_ms"] / row["zonal_field_ms"]
        row["general_over_zonal_rhs"] = row["general_rhs_ms"] / row["zonal_rhs_ms"]
    load = os.getloadavg()
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"one thread; load average {load_before[0]:.2f} before, {load[0]:.2f} after\n")
    print("| L | unknowns | nodes | zonal RHS (ms) | of which field | rotated RHS (ms) | "
          "general RHS (ms) | of which field | direct zonal field (ms) | direct / Funk-Hecke "
          "field | general / zonal RHS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        star = "*" if r.get("direct_extrapolated") else ""
        print(f"| {r['L']} | {r['unknowns']} | {r['nodes']} | {r['zonal_rhs_ms']:.2f} | "
              f"{r['zonal_field_ms']:.2f} | {r['rotated_rhs_ms']:.2f} | "
              f"{r['general_rhs_ms']:.2f} | {r['general_field_ms']:.2f} | "
              f"{r['direct_field_ms']:.0f}{star} | {r['direct_over_funk_hecke_field']:.0f}x | "
              f"{r['general_over_zonal_rhs']:.1f}x |")
    print("\n* extrapolated by nodes^2 from the band limit below")
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                    "loadavg_before": load_before, "loadavg_after": load,
                                    "rows": rows}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
