"""Claims (issue 13), on a smooth case with random Q, K, V (SA, beta = 1, seeded; the start
is the Poisson kernel P_w0, |w0| = 0.34, whose coefficients decay like |w0|^l; T = 1):

1. Spectral convergence in the band limit L. The reference is the solution at L = 64 (its
   spectral tail at T is ~1e-12). The L2 error e(L) = ||a_L(T) - a_64(T)|| (coefficients, so
   the L2 norm of the density difference) cannot be below the best-approximation error, the
   tail t(L) = (sum_{l > L} A_l^2)^{1/2} of the reference's own spectrum (A_l = per-degree
   amplitude), a theorem; Galerkin quasi-optimality says e(L) <= C t(L), so both decay at one
   exponential rate. Asserted: e(L) >= t(L) at every L (record: min e/t, at least 1), and the
   fitted rates sigma_e, sigma_t of e ~ C e^{-sigma L} agree within 15% (the tolerance of an
   observed-order check, as 2 +- 0.3 for second order).
2. The DG solver (DG1, the default options) converges to the spectral solution at observed
   order 2 +- 0.3 over icosphere levels 2..5, measured as the L1 distance
   sum_K |rho_K - rho_spec(c_K)| |K| between the DG cell averages and the spectral density at
   the projected centroids c_K (cell average vs point value is itself O(h^2), so the order is
   the DG solver's).
Runtime: about 1 minute (level 5 dominates).
"""

from __future__ import annotations

import math

import numpy as np

from continuum import Attention, solve
from continuum.sphere.exact import poisson_density
from continuum.sphere.harmonic import from_real, real_degrees, to_real
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "sphere_spectral_convergence"
W0 = np.array([0.2, 0.15, -0.2])
T, REFERENCE_L, RATE_TOLERANCE = 1.0, 64, 0.15


def model():
    rng = np.random.default_rng(1)
    Q, K, V = (np.eye(3) + 0.3 * rng.standard_normal((3, 3)) for _ in range(3))
    return Attention(beta=1.0, d=3, Q=Q, K=K, V=V, normalized=True)


def rho0(p):
    return poisson_density(p, W0)


def spectral(L):
    return solve(model(), rho0, T, method="spectral", resolution=L, times=[0.0, T],
                 rtol=1e-13, atol=1e-15, on_unresolved="warn")


def embed(a, L, L_big):
    """Real coefficients of degree <= L in the layout of degree <= L_big (zeros beyond L)."""
    small, big = from_real(a, L), np.zeros((L_big + 1) * (L_big + 2) // 2, dtype=complex)
    for m in range(L + 1):  # healpy layout: index of (l, m) is m (2 Lmax + 1 - m) / 2 + l
        s0, b0 = m * (2 * L + 1 - m) // 2, m * (2 * L_big + 1 - m) // 2
        big[b0 + m:b0 + L + 1] = small[s0 + m:s0 + L + 1]
    return to_real(big, L_big)


def spectral_values(a, L, points):
    import ducc0

    p = points / np.linalg.norm(points, axis=1)[:, None]
    loc = np.stack([np.arccos(np.clip(p[:, 2], -1, 1)),
                    np.mod(np.arctan2(p[:, 1], p[:, 0]), 2 * np.pi)], -1)
    return ducc0.sht.synthesis_general(alm=from_real(a, L)[None], spin=0, lmax=L, loc=loc,
                                       epsilon=1e-13)[0]


def main(out_dir=None, quick=False, band_limits=(8, 12, 16, 20, 24, 28, 32, 40),
         levels=(2, 3, 4, 5)):
    if quick:
        band_limits, levels = (8, 12, 16, 20), (2, 3, 4)
    with Timer() as t_spec:
        reference = spectral(REFERENCE_L).info["coefficients"][1]
        amplitude = np.sqrt(np.bincount(real_degrees(REFERENCE_L), weights=reference**2))
        tails = np.array([math.sqrt(float((amplitude[L + 1:] ** 2).sum()))
                          for L in band_limits])
        errors = np.array([np.linalg.norm(embed(spectral(L).info["coefficients"][1], L,
                                                REFERENCE_L) - reference)
                           for L in band_limits])
    sigma_e = -float(np.polyfit(band_limits, np.log(errors), 1)[0])
    sigma_t = -float(np.polyfit(band_limits, np.log(tails), 1)[0])
    with Timer() as t_dg:
        dg = []
        for level in levels:
            sol = solve(model(), rho0, T, method="fem", resolution=level, times=[0.0, T])
            exact = spectral_values(reference, REFERENCE_L, sol.points)
            dg.append(float(np.abs(sol.density(1) - exact) @ sol.quadrature))
    h = 2.0 ** -np.array(levels, dtype=float)  # the icosphere's edge halves per level
    order = float(np.polyfit(np.log(h), np.log(dg), 1)[0])

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].semilogy(band_limits, errors, "o-", label=f"error, fitted e^(-{sigma_e:.3f} L)")
    axes[0].semilogy(band_limits, tails, "k--", label=f"spectral tail of the reference, "
                     f"e^(-{sigma_t:.3f} L)")
    axes[0].set_xlabel("band limit L")
    axes[0].set_ylabel(f"L2 distance to L = {REFERENCE_L} at T = {T:g}")
    axes[0].legend(fontsize=8)
    axes[1].loglog(h, dg, "s-", label=f"DG1 vs spectral, fitted order {order:.2f}")
    axes[1].loglog(h, dg[0] * (h / h[0]) ** 2, "k--", label="h^2")
    axes[1].set_xlabel("relative mesh size 2^-level")
    axes[1].set_ylabel("L1 distance to the spectral solution")
    axes[1].legend(fontsize=8)
    fig.suptitle("Random Q, K, V on S^2 (SA, beta = 1): spectral convergence, DG -> spectral")
    figure = save(fig, out_dir, NAME)
    params = {"T": T, "w0": W0.tolist(), "reference_L": REFERENCE_L,
              "band_limits": list(band_limits), "levels": list(levels)}
    details = [{"L": L, "error": e, "tail": t} for L, e, t in zip(band_limits, errors, tails)]
    return [
        Record(case=f"{NAME}_rate", claim="exponential rate of the L2 error in L against the "
               "rate of the reference's spectral tail (relative difference)",
               measured=sigma_e, expected=sigma_t, tolerance=RATE_TOLERANCE, error_kind="rel",
               details=details, figure=figure, runtime_s=t_spec.seconds, parameters=params),
        Record(case=f"{NAME}_best_approximation", claim="error / best-approximation error, "
               "minimum over L (a theorem: at least 1)", measured=float((errors / tails).min()),
               expected=1.0, tolerance=0.0, error_kind="at_least", details=details,
               figure=figure, runtime_s=0.0, parameters=params),
        Record(case=f"{NAME}_dg_order", claim="DG solution -> spectral solution: observed "
               "order of the L1 distance", measured=order, expected=2.0, tolerance=0.3,
               error_kind="abs", details=[{"level": lv, "l1_distance": e}
                                          for lv, e in zip(levels, dg)],
               figure=figure, runtime_s=t_dg.seconds, parameters=params),
    ]


if __name__ == "__main__":
    for r in main():
        print(r)
