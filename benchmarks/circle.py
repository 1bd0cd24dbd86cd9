"""Benchmark of the S^1 continuum solvers: FFT field path against the Numba kernel path.

What is measured, for SA, beta = 4, Q = K = V = I and the smooth positive density
rho = (1 + 0.5 cos theta) / (2 pi) on n equispaced nodes (spectral) or cell centres (FV), for
n in {64, ..., 4096} (--quick: n <= 512):

* time per right-hand-side evaluation (best of REPEATS timings after one warm-up call; each
  timing averages enough calls to last >= 20 ms) of ``spectral_rhs`` and of ``fv_rhs`` (MC
  limiter), each with ``path="fft"`` (O(n log n)) and ``path="kernel"`` (Numba, O(n^2));
* time per step: spectral = 12 x RHS (DOP853 evaluates 12 stages per step; the number of
  accepted steps of a solve varies with the tolerances, so this is a per-step proxy only);
  FV = 3 x RHS (SSP-RK3). For FV also the CFL step dt = 0.45 h / max|v| at this density and
  the cost per unit of simulated time, (3 x RHS) / dt;
* the ratio kernel/fft of the RHS times per method and n, and the fitted exponent p of
  time ~ n^p (least squares in log-log over the largest 4 n); expect p ~ 1 (n log n) for fft
  and p ~ 2 for kernel once n is large enough for the O(n^2) work to dominate overheads;
* max |rhs_kernel - rhs_fft| / max |rhs_fft| (a correctness sanity check, not a benchmark).

Both paths run on one core: OMP_NUM_THREADS and NUMBA_NUM_THREADS are set to 1 below, before
numpy and numba are imported.

Why ratios: the machine is shared and noisy, so absolute times vary from run to run; the
ratio of the two paths measured back to back under the same conditions (and the exponents)
are the figures to compare across runs and machines.

Usage: python benchmarks/circle.py [--quick] [--out FILE.json]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["NUMBA_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from continuum.circle import grid  # noqa: E402
from continuum.fv_circle import fv_rhs  # noqa: E402
from continuum.model import Attention  # noqa: E402
from continuum.spectral_circle import spectral_rhs  # noqa: E402

NS, REPEATS, BETA, CFL, DOP853_STAGES = (64, 128, 256, 512, 1024, 2048, 4096), 5, 4.0, 0.45, 12
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
    out, rhs = {"n": n}, {}
    for path in ("fft", "kernel"):
        for m, f in (("spectral", lambda: spectral_rhs(model, rho_s, theta, h, path)),
                     ("fv", lambda: fv_rhs(model, rho_f, centres, h, "mc", path)[0])):
            rhs[m, path] = f()
            out[f"{m}_{path}"] = best_time(f)
    out["fv_dt"] = CFL * h / fv_rhs(model, rho_f, centres, h, "mc", "fft")[1]
    for m in ("spectral", "fv"):  # sanity check: both paths compute the same RHS
        ref = rhs[m, "fft"]
        out[f"{m}_diff"] = float(np.abs(rhs[m, "kernel"] - ref).max() / np.abs(ref).max())
        out[f"{m}_ratio"] = out[f"{m}_kernel"] / out[f"{m}_fft"]
    for path in ("fft", "kernel"):
        out[f"spectral_step_{path}"] = DOP853_STAGES * out[f"spectral_{path}"]
        out[f"fv_step_{path}"] = 3 * out[f"fv_{path}"]
        out[f"fv_per_unit_time_{path}"] = out[f"fv_step_{path}"] / out["fv_dt"]
    return out


def exponent(rows, key, last=4) -> float:
    """Least-squares slope of log(time) against log(n) over the largest `last` n."""
    rows = rows[-last:]
    return float(np.polyfit(np.log([r["n"] for r in rows]), np.log([r[key] for r in rows]), 1)[0])


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    import numba
    return {"cpu": cpu, "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "threads": 1}


def num(x: float) -> str:
    """3 significant figures without exponent notation."""
    return f"{x:.{max(0, 2 - int(np.floor(np.log10(abs(x)))))}f}" if x else "0"


def table(info, rows, fits) -> str:
    ms = lambda x: num(x * 1e3)  # noqa: E731
    lines = [f"Machine: {info['cpu']}; numpy {info['numpy']}, numba {info['numba']}; 1 thread; "
             f"SA, beta = {BETA:g}, Q = K = V = I, rho = (1 + 0.5 cos theta)/(2 pi).", "",
             "Time per RHS evaluation (ms) and kernel/fft ratio:", "",
             "| n | spectral fft | spectral kernel | kernel/fft | FV fft | FV kernel "
             "| kernel/fft |",
             "|---:" * 7 + "|"]
    lines += [f"| {r['n']} | {ms(r['spectral_fft'])} | {ms(r['spectral_kernel'])} | "
              f"{r['spectral_ratio']:.2f} | {ms(r['fv_fft'])} | {ms(r['fv_kernel'])} | "
              f"{r['fv_ratio']:.2f} |" for r in rows]
    lines += ["", "Time per step (ms; spectral = 12 x RHS, the DOP853 stage count, as a proxy: "
              "accepted steps vary), FV CFL step dt = 0.45 h / max|v| and FV cost per unit "
              "simulated time (s):", "",
              "| n | spectral step fft | spectral step kernel | FV step fft | FV step kernel "
              "| FV dt | FV s per unit time fft | FV s per unit time kernel |", "|---:" * 8 + "|"]
    lines += [f"| {r['n']} | {ms(r['spectral_step_fft'])} | {ms(r['spectral_step_kernel'])} | "
              f"{ms(r['fv_step_fft'])} | {ms(r['fv_step_kernel'])} | {r['fv_dt']:.3g} | "
              f"{num(r['fv_per_unit_time_fft'])} | {num(r['fv_per_unit_time_kernel'])} |"
              for r in rows]
    big = ", ".join(str(r["n"]) for r in rows[-4:])
    lines += ["", f"Fitted exponent p of RHS time ~ n^p (n = {big}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in fits.items()) + ".",
              "Max relative difference kernel vs fft RHS: spectral "
              f"{max(r['spectral_diff'] for r in rows):.1e}, "
              f"FV {max(r['fv_diff'] for r in rows):.1e}."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n <= 512 only")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "circle-results.json"))
    args = ap.parse_args()
    model = Attention(beta=BETA, d=2, normalized=True)
    ns = [n for n in NS if n <= 512] if args.quick else NS
    rows = []
    for n in ns:
        rows.append(bench(model, n))
        print(f"  n={n} done", flush=True)
    keys = ("spectral_fft", "spectral_kernel", "fv_fft", "fv_kernel")
    fits = {k: exponent(rows, k) for k in keys}
    info = machine()
    print(table(info, rows, fits))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": info, "repeats": REPEATS, "beta": BETA, "model": "SA",
                   "density": "(1 + 0.5 cos theta) / (2 pi)", "limiter": "mc", "cfl": CFL,
                   "dop853_stages": DOP853_STAGES, "quick": args.quick, "units": "seconds",
                   "fitted_exponents": fits, "results": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
