"""Benchmark of the O(N) attention field on S^2 (continuum.sphere.transform) against the
direct sum, the path of ``attention_field(method="harmonic")``.

What is measured, on this machine, with the thread count given by --threads (default 2,
both paths):

* accuracy at N = 10^6 sources: a von Mises-Fisher cloud (kappa = 2, so the field is not
  close to zero as for uniform tokens), 1000 targets among the sources; the maximum relative
  error max |X_fast - X_direct| / max |X_direct| for zonal (Q = K = I) and general (random)
  A = Q^T K, SA and USA, beta = 1 (kappa = beta ||A|| = 1);
* time per evaluation of the field at every token (targets = sources, as in a particle step)
  at N = 10^4, 10^5, 10^6, best of 3 after one warm-up (the general-A matrix K is computed at
  the warm-up, once per model, and reported separately);
* the direct sum timed at N = 2^15 (targets = sources) and scaled by (N / 2^15)^2, and the
  speed-up fast / scaled direct at each N. The ratio is the figure to compare across runs:
  the machine is shared, absolute times vary;
* the same contract on S^1 (``continuum.circle.field.fourier_field``, Q^T K = 0.8 R(0.3)):
  relative error against the direct sum on 1000 targets of N = 10^6 von Mises tokens (SA,
  USA) and the time per evaluation at N = 10^4, 10^5, 10^6;
* a Runge-Kutta stage of a zonal particle step (kappa = 4, tokens off the sphere by 1e-5):
  the gradient form of ``ZonalTransforms`` against the four-transform form, ratio per N;
* particles at scale: ``simulate`` with N = 10^6 tokens on S^2, random Q, K, V (entries
  N(0, 1/3)), SA, beta = 1, RK4 with dt = 0.1 (dt L_est inside RK4's stability interval) to
  T = 5, ``field="auto"``; wall time per step (4 field evaluations).

Usage: python benchmarks/fast_field.py [--quick] [--threads 2] [--out FILE.json]
(--quick: N <= 10^5, accuracy at 10^5, particles at N = 10^5 to T = 0.5.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def best_of(func, repeats=3):
    func()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "fast_field-results.json")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    from continuum import Attention
    from continuum.direct import direct_field
    from continuum.geometry import uniform_points
    from continuum.sphere import harmonic as transform
    from particles import sample

    rng = np.random.default_rng(0)
    general = rng.standard_normal((3, 3))
    general /= np.linalg.norm(general, 2)
    V = rng.standard_normal((3, 3))
    models = {f"{kind}_{'SA' if sa else 'USA'}": Attention(
        beta=1.0, d=3, K=np.eye(3) if kind == "zonal" else general, V=V, normalized=sa)
        for kind in ("zonal", "general") for sa in (True, False)}
    sizes = (10**4, 10**5) if args.quick else (10**4, 10**5, 10**6)
    n_acc = sizes[-1]
    mean = np.array([1.0, 0.0, 0.0])
    vmf = sample(lambda p: 2.0 / (4 * np.pi * np.sinh(2.0)) * np.exp(2.0 * p @ mean),
                 n=n_acc, d=3, seed=1)
    w = np.full(n_acc, 1.0 / n_acc)
    load = os.getloadavg()
    result = {"machine": platform.processor() or platform.machine(), "node": platform.node(),
              "cpus": os.cpu_count(), "threads": args.threads, "loadavg_before": load,
              "accuracy_N": n_acc, "accuracy": {}, "timing": {}}
    print(f"machine: {result['machine']} ({result['cpus']} cpus), threads {args.threads}, "
          f"load average {load[0]:.2f}")
    for name, model in models.items():
        targets = vmf[:1000]
        ref = direct_field(targets, vmf, w, model)
        got = transform.harmonic_field(targets, vmf, w, model, nthreads=args.threads)[0]
        err = float(np.abs(got - ref).max() / np.abs(ref).max())
        result["accuracy"][name] = err
        print(f"accuracy {name}: max rel error vs direct at N = {n_acc}: {err:.2e}")
    m2 = 2**15
    x2 = uniform_points(m2, 3, rng)
    w2 = np.full(m2, 1.0 / m2)
    for name in ("zonal_SA", "general_SA"):
        model = models[name]
        transform._kernel_matrix_cached.cache_clear()
        t0 = time.perf_counter()
        transform.harmonic_field(x2[:10], x2[:10], w2[:10], model)  # builds K (general A)
        setup = time.perf_counter() - t0
        direct = best_of(lambda: direct_field(x2, x2, w2, model), repeats=1)
        rows = []
        for n in sizes:
            x = uniform_points(n, 3, rng)
            wn = np.full(n, 1.0 / n)
            fast = best_of(lambda: transform.harmonic_field(x, x, wn, model,
                                                            nthreads=args.threads))
            scaled = direct * (n / m2) ** 2
            rows.append({"N": n, "fast_s": fast, "direct_scaled_s": scaled,
                         "speedup": scaled / fast})
            print(f"{name}: N = {n:>8d}: fast {fast:.3f} s, direct (scaled from 2^15) "
                  f"{scaled:.3g} s, speed-up {scaled / fast:.0f}x")
        result["timing"][name] = {"direct_2^15_s": direct, "setup_s": setup, "rows": rows}
        print(f"{name}: direct at N = 2^15: {direct:.2f} s; first call (K, caches): "
              f"{setup:.2f} s")
    # a Runge-Kutta stage of a zonal particle step (targets = sources, off the sphere by
    # O(dt^2)): the gradient form (ZonalTransforms, two adjoints and three syntheses) against
    # the four-transform form it replaced at stages (four of each), same function
    model = Attention(beta=4.0, d=3, V=V)  # zonal, kappa = 4 (the Sobolev validation case)
    result["zonal_stage"] = []
    for n in sizes:
        x = sample(lambda p: 2.0 / (4 * np.pi * np.sinh(2.0)) * np.exp(2.0 * p @ mean),
                   n=n, d=3, seed=2)
        x = x + 0.005 * np.cross(x, mean)  # an RK4 stage x + (dt / 2) k, off the sphere
        wn = np.full(n, 1.0 / n)
        gradient = best_of(lambda: transform.harmonic_field(x, x, wn, model,
                                                            nthreads=args.threads))
        kept = transform.GRADIENT_MIN_KAPPA
        transform.GRADIENT_MIN_KAPPA = np.inf  # forces the four-transform form
        try:
            four = best_of(lambda: transform.harmonic_field(x, x, wn, model,
                                                            nthreads=args.threads))
        finally:
            transform.GRADIENT_MIN_KAPPA = kept
        result["zonal_stage"].append({"N": n, "gradient_form_s": gradient,
                                      "four_transform_s": four, "ratio": four / gradient})
        print(f"zonal RK stage (kappa = 4): N = {n:>8d}: gradient form {gradient:.3f} s, "
              f"four-transform form {four:.3f} s, ratio {four / gradient:.2f}x")
    from continuum.circle.field import fourier_field
    from continuum.timestep import field_scale

    c, a = 0.8, 0.3
    rot = c * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    theta = np.random.default_rng(5).vonmises(0.0, 2.0, n_acc)
    circle = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    result["circle"] = {"accuracy": {}, "rows": []}
    for sa in (True, False):
        model = Attention(beta=1.0, d=2, K=rot, V=V[:2, :2], normalized=sa)
        ref = direct_field(circle[:1000], circle, w, model)
        got = fourier_field(circle[:1000], circle, w, model)
        err = float(np.abs(got - ref).max() / np.abs(ref).max())
        result["circle"]["accuracy"]["SA" if sa else "USA"] = err
        print(f"S^1 accuracy {'SA' if sa else 'USA'}: max rel error vs direct at N = {n_acc}: "
              f"{err:.2e}")
    for n in sizes:
        xs, wn = circle[:n], np.full(n, 1.0 / n)
        fast = best_of(lambda: fourier_field(xs, xs, wn, model))
        result["circle"]["rows"].append({"N": n, "fast_s": fast})
        print(f"S^1 Fourier field: N = {n:>8d}: {fast:.3f} s")

    from particles import simulate

    n_p, T_p, dt_p = (10**5, 0.5, 0.1) if args.quick else (10**6, 5.0, 0.1)
    Q, K, Vp = (rng.standard_normal((3, 3)) / np.sqrt(3) for _ in range(3))
    model = Attention(beta=1.0, d=3, Q=Q, K=K, V=Vp)
    x0 = uniform_points(n_p, 3, rng)
    t0 = time.perf_counter()
    traj = simulate(model, x0, T_p, times=np.linspace(0, T_p, 6), dt=dt_p, progress=False)
    wall = time.perf_counter() - t0
    steps = traj.info["steps"]
    result["particles"] = {"N": n_p, "T": T_p, "dt": dt_p, "steps": steps, "wall_s": wall,
                           "s_per_step": wall / steps,
                           "dt_L_est": dt_p * field_scale(model),
                           "kappa": float(model.beta * np.linalg.norm(model.A, 2)),
                           "order_parameter_T": float(traj.measure(-1).order_parameter())}
    print(f"particles: N = {n_p}, RK4 dt = {dt_p} to T = {T_p}: {steps} steps in {wall:.1f} s, "
          f"{wall / steps:.2f} s per step (dt L_est = {dt_p * field_scale(model):.2f}, "
          f"kappa = {result['particles']['kappa']:.2f})")
    result["loadavg_after"] = os.getloadavg()
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
