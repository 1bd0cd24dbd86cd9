"""Benchmark of the S^1 continuum solvers: FFT field path against the Numba kernel path.

Measured for SA, beta = 4, Q = K = V = I, rho = (1 + 0.5 cos theta) / (2 pi) on n nodes
(spectral) or cell centres (FV), n in {64, ..., 4096} (--quick: n <= 512), on one core:

* time per RHS evaluation (best of REPEATS batches of >= 20 ms after a warm-up call) of
  ``spectral_rhs`` and ``fv_rhs`` (MC limiter), with ``path="fft"`` (FFT convolution,
  O(n log n)) and ``path="kernel"``. "kernel" is the Numba O(n^2) quadrature, forced at every
  n: ``circle.field.circle_velocity`` as shipped switches to the O(n L) Fourier expansion once
  n^2 >= ``FOURIER_MIN_PAIRS`` (n >= 2048); that as-shipped path is timed as well where it
  differs ("kernel shipped", RHS only);
* the FV right-hand side as the solver runs it (``FVOperator``: precomputed kernel FFT and
  geometry, one real-FFT pair, compiled slopes and fluxes) against the plain numpy reference
  ``fv_rhs`` it replaced (both FFT path), per RHS and per measured SSP-RK3 step, the ratio
  plain/compiled and the FV cost per unit simulated time with each;
* time per step: spectral = 12 x RHS (DOP853 stage count; a proxy, since the number of
  accepted steps of a solve varies), FV = 3 x RHS (SSP-RK3); the FV CFL step
  dt = 0.45 h / max|v| at this density and the FV cost per unit simulated time, step / dt;
* ratios kernel/fft per method and n, and the exponent p of time ~ n^p fitted over the
  largest 4 n (expect p ~ 1 for fft, p ~ 2 for kernel once the O(n^2) work dominates);
* max |rhs_kernel - rhs_fft| / max |rhs_fft| (sanity check, not a benchmark).

Why ratios: the machine is shared and noisy, so absolute times vary from run to run; the
ratio of the two paths measured back to back (and the exponents) are the figures to compare
across runs and machines.

Usage: python benchmarks/circle.py [--quick] [--out FILE.json]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy/numba are imported: one core for both paths
os.environ["NUMBA_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

import continuum.circle.field as ck  # noqa: E402
from continuum.circle.fv import FVOperator, fv_rhs  # noqa: E402
from continuum.circle.grid import grid  # noqa: E402
from continuum.circle.spectral import spectral_rhs  # noqa: E402
from continuum.model import Attention  # noqa: E402

NS, REPEATS, BETA, CFL, DOP853_STAGES = (64, 128, 256, 512, 1024, 2048, 4096), 9, 4.0, 0.45, 12
SHIPPED = ck.FOURIER_MIN_PAIRS  # pairs from which circle_velocity uses the Fourier expansion
ROOT = Path(__file__).resolve().parent.parent


def best_time(func, min_batch_s=0.02) -> float:
    """Seconds per call: best of REPEATS batches (each >= min_batch_s) after a warm-up call."""
    func()
    t0 = time.perf_counter()
    func()
    calls = max(1, int(min_batch_s / max(time.perf_counter() - t0, 1e-7)))
    best = np.inf
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(calls):
            func()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def bench(model, n: int) -> dict:
    h = 2 * np.pi / n
    theta, centres = grid(n), grid(n, offset=0.5)
    rho_s, rho_f = ((1 + 0.5 * np.cos(t)) / (2 * np.pi) for t in (theta, centres))
    out, rhs = {"n": n, "fv_dt": CFL * h / fv_rhs(model, rho_f, centres, h, "mc", "fft")[1]}, {}
    # (name, path, Fourier threshold); "kernel shipped" only where it differs from "kernel"
    variants = [("fft", "fft", SHIPPED), ("kernel", "kernel", 1 << 62)]
    variants += [("kernel_shipped", "kernel", SHIPPED)] if n * n >= SHIPPED else []
    for name, path, threshold in variants:
        ck.FOURIER_MIN_PAIRS = threshold
        for m, f in (("spectral", lambda: spectral_rhs(model, rho_s, theta, h, path)),
                     ("fv", lambda: fv_rhs(model, rho_f, centres, h, "mc", path)[0])):
            rhs[m, name], out[f"{m}_{name}"] = f(), best_time(f)
    ck.FOURIER_MIN_PAIRS = SHIPPED
    op = FVOperator(model, n, "mc", "fft")
    rhs["fv", "compiled"], out["fv_compiled"] = op(rho_f)[0], best_time(lambda: op(rho_f)[0])
    out["fv_compiled_diff"] = float(np.abs(rhs["fv", "compiled"] - rhs["fv", "fft"]).max()
                                    / np.abs(rhs["fv", "fft"]).max())
    for name, f in (("fft", lambda r: fv_rhs(model, r, centres, h, "mc", "fft")), ("compiled", op)):
        out[f"fv_measured_step_{name}"] = best_time(lambda: ssp_rk3_step(f, rho_f, out["fv_dt"]))
        out[f"fv_measured_per_unit_time_{name}"] = out[f"fv_measured_step_{name}"] / out["fv_dt"]
    out["fv_compiled_ratio"] = out["fv_measured_step_fft"] / out["fv_measured_step_compiled"]
    for path in ("fft", "kernel"):
        out[f"spectral_step_{path}"] = DOP853_STAGES * out[f"spectral_{path}"]
        out[f"fv_step_{path}"] = 3 * out[f"fv_{path}"]  # SSP-RK3
        out[f"fv_per_unit_time_{path}"] = out[f"fv_step_{path}"] / out["fv_dt"]
    for m in ("spectral", "fv"):  # sanity check: all paths compute the same RHS
        ref = rhs[m, "fft"]
        out[f"{m}_diff"] = max(float(np.abs(rhs[m, v[0]] - ref).max() / np.abs(ref).max())
                               for v in variants[1:])
        out[f"{m}_ratio"] = out[f"{m}_kernel"] / out[f"{m}_fft"]
    return out


def ssp_rk3_step(rhs, r, dt):
    """One SSP-RK3 (Shu-Osher) step, as ``solve_fv`` takes it."""
    s1 = r + dt * rhs(r)[0]
    s2 = 0.75 * r + 0.25 * (s1 + dt * rhs(s1)[0])
    return r / 3.0 + (2.0 / 3.0) * (s2 + dt * rhs(s2)[0])


def exponent(rows, key, last=4) -> float:
    """Least-squares slope of log(time) against log(n) over the largest `last` n."""
    rows = rows[-last:]
    return float(np.polyfit(np.log([r["n"] for r in rows]), np.log([r[key] for r in rows]), 1)[0])


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    import numba
    return {"cpu": cpu, "python": sys.version.split()[0], "numpy": np.__version__,
            "numba": numba.__version__, "numba_threads": numba.get_num_threads()}


def cell(key: str, x) -> str:
    """Table entry: ratios to 2 decimals, dt to 3 digits, FV s/unit time in s, times in ms."""
    if x is None:
        return "(same)"
    if key.endswith("diff"):
        return f"{x:.1e}"
    if key.endswith("ratio") or key == "fv_dt":
        return f"{x:.2f}" if key.endswith("ratio") else f"{x:.3g}"
    x *= 1.0 if "unit_time" in key else 1e3
    return f"{x:.{max(0, 2 - int(np.floor(np.log10(x))))}f}"  # 3 digits, no exponent


def md_table(rows, keys) -> list[str]:
    heads = ["plain/compiled" if k == "fv_compiled_ratio" else "kernel/fft"
             if k.endswith("ratio") else k.replace("per_unit_time", "s/unit time")
             .replace("_", " ").replace("fv", "FV") for k in keys]
    return (["| n | " + " | ".join(heads) + " |", "|---:" * (len(keys) + 1) + "|"]
            + [f"| {r['n']} | " + " | ".join(cell(k, r.get(k)) for k in keys) + " |"
               for r in rows])


def table(info, rows, fits) -> str:
    big = ", ".join(str(r["n"]) for r in rows[-4:])
    diffs = {m: max(r[f"{m}_diff"] for r in rows) for m in ("spectral", "fv")}
    return "\n".join(
        [f"Machine: {info['cpu']}; numpy {info['numpy']}, numba {info['numba']} "
         f"({info['numba_threads']} thread); SA, beta = {BETA:g}, Q = K = V = I, "
         "rho = (1 + 0.5 cos theta)/(2 pi).", "",
         "Time per RHS evaluation (ms); kernel = Numba O(n^2) quadrature (forced), kernel "
         f"shipped = the kernel path as shipped (Fourier expansion from n^2 >= {SHIPPED}):", ""]
        + md_table(rows, ["spectral_fft", "spectral_kernel", "spectral_ratio",
                          "spectral_kernel_shipped", "fv_fft", "fv_kernel", "fv_ratio",
                          "fv_kernel_shipped"])
        + ["", "Time per step (ms; spectral = 12 x RHS, the DOP853 stage count, a proxy since "
           "accepted steps vary; FV = 3 x RHS, SSP-RK3), FV CFL step dt = 0.45 h / max|v| and "
           "FV cost per unit simulated time (s):", ""]
        + md_table(rows, ["spectral_step_fft", "spectral_step_kernel", "fv_step_fft",
                          "fv_step_kernel", "fv_dt", "fv_per_unit_time_fft",
                          "fv_per_unit_time_kernel"])
        + ["", "FV right-hand side as the solver runs it (compiled: FVOperator) against the "
           "plain numpy reference fv_rhs (FFT path both): time per RHS (ms), measured "
           "SSP-RK3 step (ms), the ratio of the measured steps plain/compiled, cost per unit "
           "simulated time (s) and the max relative RHS difference:", ""]
        + md_table(rows, ["fv_fft", "fv_compiled", "fv_measured_step_fft",
                          "fv_measured_step_compiled", "fv_compiled_ratio",
                          "fv_measured_per_unit_time_fft",
                          "fv_measured_per_unit_time_compiled", "fv_compiled_diff"])
        + ["", f"Fitted exponent p of RHS time ~ n^p (n = {big}): "
           + ", ".join(f"{k} {v:.2f}" for k, v in fits.items()) + ".",
           f"Max relative difference kernel vs fft RHS: spectral {diffs['spectral']:.1e}, "
           f"FV {diffs['fv']:.1e}."])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n <= 512 only")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "circle-results.json"))
    args = ap.parse_args()
    model = Attention(beta=BETA, d=2, normalized=True)
    rows = []
    for n in (n for n in NS if n <= 512 or not args.quick):
        rows.append(bench(model, n))
        print(f"  n={n} done", file=sys.stderr, flush=True)
    fits = {k: exponent(rows, k) for k in ("spectral_fft", "spectral_kernel", "fv_fft",
                                           "fv_kernel", "fv_compiled")}
    info = machine()
    print(table(info, rows, fits))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": info, "repeats": REPEATS, "beta": BETA, "model": "SA",
                   "density": "(1 + 0.5 cos theta) / (2 pi)", "limiter": "mc", "cfl": CFL,
                   "dop853_stages": DOP853_STAGES, "fourier_min_pairs_shipped": SHIPPED,
                   "quick": args.quick, "units": "seconds", "fitted_exponents": fits,
                   "results": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
