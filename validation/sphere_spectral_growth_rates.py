"""Claim: the spectral S^2 solver reproduces the growth rates of the uniform state,
l(l+1) i_l(beta)/beta (USA) and l(l+1) i_l(beta)/(beta i_0(beta)) (SA), for beta in
{0.5, 1, 4, 9} and degrees l = 1..4 to 1e-8 relative (issue 13).

Run: rho0 = (1 + eps Re Y_ll-like sin^l(theta) cos(l phi))/(4 pi), eps = 1e-5, a sectoral
perturbation: its quadratic terms feed only m = 0 and m = 2l, so the (l, l) coefficient grows
like e^{lambda t} (1 + O(eps^2)) (relative 1e-10). Band limit L = 8, DOP853 with rtol 1e-13,
atol 1e-16, horizon T = min(1/lambda, 2) (as on S^1); rate = log(a(T)/a(0))/T with a the
cosine (l, m = l) coefficient. For the unnormalised model every term of the projected
dynamics is a polynomial integrated exactly (continuum.sphere.spectral), so the linearisation
is exact; for SA the ratio S_y/S_1 is linearised around a constant S_1. Runtime: seconds.
"""

from __future__ import annotations

import math

import numpy as np

from continuum import Attention, solve
from continuum.linear import uniform_growth_rate
from validation.plotting import growth_rate_figure
from validation.record import Record, Timer

NAME = "sphere_spectral_growth_rates"
TOLERANCE = 1e-8


def measured_rate(model, l, L=8, eps=1e-5, T=1.0):
    """Growth rate of the sectoral mode (l, l) from a run started at the uniform state plus
    eps sin^l(theta) cos(l phi) / (4 pi)."""
    def rho0(p):
        s = np.hypot(p[:, 0], p[:, 1])
        return (1 + eps * s**l * np.cos(l * np.arctan2(p[:, 1], p[:, 0]))) / (4 * np.pi)

    sol = solve(model, rho0, T, method="spectral", resolution=L, times=[0.0, T], rtol=1e-13,
                atol=1e-16)
    a = sol.info["coefficients"]
    index = (L + 1) + sum(L + 1 - m for m in range(1, l))  # cosine (l, m = l), see to_real
    return math.log(a[1, index] / a[0, index]) / T


def main(out_dir=None, quick=False, betas=(0.5, 1.0, 4.0, 9.0), degrees=(1, 2, 3, 4)):
    rows = []
    with Timer() as timer:
        for normalized in (True, False):
            for beta in betas:
                model = Attention(beta=beta, d=3, normalized=normalized)
                for l in degrees:
                    expected = uniform_growth_rate(l, beta, 3, normalized)
                    measured = measured_rate(model, l, T=min(1.0 / expected, 2.0))
                    rows.append({"model": model.name, "beta": beta, "degree": l,
                                 "measured": measured, "expected": expected,
                                 "rel_error": abs(measured / expected - 1)})
    worst = max(rows, key=lambda r: r["rel_error"])
    figure = growth_rate_figure(rows, betas, degrees, "degree", "degree l", TOLERANCE,
                                "Spectral S^2 solver (L = 8) vs l(l+1) i_l / beta (i_0)",
                                out_dir, NAME)
    return Record(case=NAME, claim="uniform-state growth rates on S^2 from the spectral solver "
                  "(worst)", measured=worst["measured"], expected=worst["expected"],
                  tolerance=TOLERANCE, error_kind="rel", details=rows, figure=figure,
                  runtime_s=timer.seconds, parameters={"betas": list(betas),
                                                       "degrees": list(degrees), "L": 8,
                                                       "eps": 1e-5})


if __name__ == "__main__":
    print(main())
