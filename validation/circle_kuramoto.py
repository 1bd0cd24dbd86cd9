"""Claim: the circle solvers reproduce the exact Kuramoto solution (SA, beta = 0, V = I):
wrapped-Cauchy densities with r(t)^2 = r0^2 e^t / (1 - r0^2 + r0^2 e^t) (docs/design.md, section 1).

* spectral (DOP853, rtol 1e-13): the error in r(t) decays exponentially with the number of
  nodes n. The density's Fourier coefficients decay like r^k, so truncating the flux at
  |k| < n/2 costs O(r_max^{n/2}): the fitted rate sigma in err ~ C e^{-sigma n} must be at
  least -log(r_max)/2 (r_max = r(T)), and n = 32 must reach 1e-10 (issue 3).
* finite volume (MC limiter, SSP-RK3, cfl 0.45): observed order 2 within 0.3 over n = 32..512
  (issue 3). The horizon T = 3 keeps r(T) = 0.675: the density stays resolved on every grid.
Runtime: a few seconds.
"""

from __future__ import annotations

import numpy as np

from continuum import Attention, solve
from continuum.circle.exact import kuramoto_order_parameter, wrapped_cauchy_density
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "circle_kuramoto"


def kuramoto_errors(method, resolutions, r0=0.2, psi=0.5, T=3.0, **options):
    """Max over saved times of |r_solver(t) - r(t)| for each resolution."""
    model = Attention(beta=0.0, d=2, normalized=True)
    times = np.linspace(0.0, T, 13)
    exact = kuramoto_order_parameter(times, r0)
    errors = []
    for n in resolutions:
        sol = solve(model, lambda p: wrapped_cauchy_density(p, r0, psi), T, method=method,
                    resolution=n, times=times, on_unresolved="warn", **options)
        errors.append(float(np.max(np.abs(sol.diagnostics["order_parameter"] - exact))))
    return np.array(errors)


def main(out_dir=None, quick=False, r0=0.2, T=3.0,
         spectral_n=(12, 16, 20, 24, 28, 32), fv_n=(32, 64, 128, 256, 512)):
    r_max = float(kuramoto_order_parameter(T, r0))
    with Timer() as t_spec:
        err_spec = kuramoto_errors("spectral", spectral_n, r0=r0, T=T, rtol=1e-13, atol=1e-15)
    sigma = -float(np.polyfit(spectral_n, np.log(err_spec), 1)[0])
    with Timer() as t_fv:
        err_fv = kuramoto_errors("fv", fv_n, r0=r0, T=T)
    order = -float(np.polyfit(np.log(fv_n), np.log(err_fv), 1)[0])

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].semilogy(spectral_n, err_spec, "o-", label=f"spectral, fitted e^(-{sigma:.2f} n)")
    axes[0].semilogy(spectral_n, err_spec[0] * r_max ** ((np.array(spectral_n) - spectral_n[0]) / 2),
                     "k--", label="theory bound rate r(T)^(n/2)")
    axes[0].set_xlabel("nodes n")
    axes[0].set_ylabel("max_t |r_n(t) - r(t)|")
    axes[0].legend(fontsize=8)
    axes[1].loglog(fv_n, err_fv, "s-", label=f"finite volume, fitted order {order:.2f}")
    axes[1].loglog(fv_n, err_fv[0] * (fv_n[0] / np.array(fv_n)) ** 2, "k--", label="n^-2")
    axes[1].set_xlabel("cells n")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Kuramoto exact solution on S^1, r0 = {r0}, T = {T}")
    figure = save(fig, out_dir, NAME)
    params = {"r0": r0, "T": T, "r_T": r_max}
    n_mod = spectral_n[-1]
    records = [
        Record(case=f"{NAME}_spectral_rate", claim="spectral: exponential rate sigma of the "
               "r(t) error (>= theory -log r(T)/2; measured minus bound reported)",
               measured=sigma, expected=-np.log(r_max) / 2, tolerance=0.0,
               error_kind="at_least", details=[{"n": n, "error": e} for n, e in
                                            zip(spectral_n, err_spec)],
               figure=figure, runtime_s=t_spec.seconds, parameters=params),
        Record(case=f"{NAME}_spectral_accuracy", claim=f"spectral: r(t) error at n = {n_mod}",
               measured=float(err_spec[-1]), expected=0.0, tolerance=1e-10, error_kind="value",
               figure=figure, runtime_s=0.0, parameters=params),
        Record(case=f"{NAME}_fv_order", claim="finite volume: observed order on r(t)",
               measured=order, expected=2.0, tolerance=0.3, error_kind="abs",
               details=[{"n": n, "error": e} for n, e in zip(fv_n, err_fv)], figure=figure,
               runtime_s=t_fv.seconds, parameters=params),
    ]
    return records


if __name__ == "__main__":
    for r in main():
        print(r)
