"""Claim (issue 5): phase transition in depth. Below the critical norm (eps < g) the deviation
between base and fine-tuned tokens stays bounded and heals at large depth T; above it the time
to deviation T_dev(delta) is finite and diverges as eps -> g+ like c / (eps - g) (theory for
concentrated data: T_dev = log(tan delta / tan theta0) / (eps - g) when the base token has
already returned to e1).

S^1, SA, beta = 1, V = diag(1, 1 - g), g = 0.2, Delta = eps e2 e2^T. Tokens: N = 40 in an arc
of width 0.01 around theta0 = 0.3 (nearly a Dirac, which stays a Dirac). D(t) = W_2 (arc
length, exact on S^1); delta = 0.5. Above: eps = g (1 + s), s in {0.0125, 0.025, 0.05, 0.1}
(close to the threshold, where the asymptotic law applies: for larger s the base token has not
yet returned to e1 at T_dev, which bends the curve); T_dev from the run (interpolated on a
grid of step 0.02 / (eps - g)); the exponent of
T_dev ~ (eps - g)^p is fitted (p = -1 within 0.1) and each T_dev is compared with the Dirac
prediction (root of theta_tuned(t) - theta_base(t) = delta, the exact Dirac formulas) to 2%.
Below: eps = g/2: max_t D(t) and D at T = 100, which must have healed below 10% of the max.
Runtime: about 20 s.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from continuum import Attention
from continuum.geometry import angles_to_circle
from forgetting.bounds import dirac_angle
from forgetting.runs import forgetting_run
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "forgetting_depth_transition"


def dirac_tdev(delta, theta0, g, eps):
    """Time when theta_tuned - theta_base = delta for the exact Dirac solutions."""
    def gap(t):
        return dirac_angle(t, theta0, g, eps) - dirac_angle(t, theta0, g, 0.0) - delta
    hi = 1.0
    while gap(hi) < 0:
        hi *= 2
    return brentq(gap, 0.0, hi, xtol=1e-12)


def main(out_dir=None, quick=False, g=0.2, theta0=0.3, delta=0.5,
         excess=(0.0125, 0.025, 0.05, 0.1), n=40):
    base = Attention(beta=1.0, d=2, V=np.diag([1.0, 1.0 - g]))
    x0 = angles_to_circle(theta0 + 0.01 * (np.arange(n) / (n - 1) - 0.5))
    rows, curves = [], {}
    with Timer() as timer:
        for s in excess:
            eps = g * (1 + s)
            tuned = base.perturbed(V=np.diag([0.0, eps]))
            predicted = dirac_tdev(delta, theta0, g, eps)
            T = 1.5 * predicted
            times = np.arange(0.0, T, 0.02 / (eps - g))
            run = forgetting_run(base, tuned, x0=x0, T=times[-1], times=times,
                                 method="dop853", rtol=1e-10, atol=1e-12)
            t_dev = run.time_to_deviation(delta)
            rows.append({"eps": eps, "eps_minus_g": eps - g, "T_dev": t_dev,
                         "T_dev_dirac": predicted, "rel_diff": abs(t_dev / predicted - 1)})
            curves[f"eps = {eps:.3g}"] = (run.times, run.deviation_w2)
        eps_below = 0.5 * g
        tuned = base.perturbed(V=np.diag([0.0, eps_below]))
        times = np.linspace(0.0, 100.0, 401)
        below = forgetting_run(base, tuned, x0=x0, T=100.0, times=times, method="dop853",
                               rtol=1e-10, atol=1e-12)
        curves[f"eps = {eps_below:.3g} (< g)"] = (below.times, below.deviation_w2)
    x = np.array([r["eps_minus_g"] for r in rows])
    y = np.array([r["T_dev"] for r in rows])
    exponent = float(np.polyfit(np.log(x), np.log(y), 1)[0])
    healed = float(below.deviation_w2[-1] / below.deviation_w2.max())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, (t, D) in curves.items():
        axes[0].plot(t[1:], D[1:], label=label)
    axes[0].axhline(delta, color="k", ls=":", label="delta")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("depth t")
    axes[0].set_ylabel("D(t) = W_2 (arc length)")
    axes[0].legend(fontsize=7)
    axes[1].loglog(x, y, "o", label=f"measured, exponent {exponent:.3f}")
    axes[1].loglog(x, [r["T_dev_dirac"] for r in rows], "k--", label="Dirac theory")
    axes[1].set_xlabel("eps - g")
    axes[1].set_ylabel(f"T_dev(delta = {delta})")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    figure = save(fig, out_dir, NAME)
    params = {"g": g, "theta0": theta0, "delta": delta, "n": n, "beta": 1.0}
    return [
        Record(case=f"{NAME}_exponent", claim="T_dev ~ (eps - g)^p above eps_c: fitted p",
               measured=exponent, expected=-1.0, tolerance=0.1, error_kind="abs",
               details=rows, figure=figure, runtime_s=timer.seconds, parameters=params),
        Record(case=f"{NAME}_dirac", claim="T_dev vs exact Dirac prediction (worst relative "
               "difference)", measured=max(r["rel_diff"] for r in rows), expected=0.0,
               tolerance=0.02, error_kind="value", details=rows, figure=figure,
               parameters=params),
        Record(case=f"{NAME}_healing", claim="below eps_c the deviation heals: D(100)/max D",
               measured=healed, expected=0.0, tolerance=0.1, error_kind="value",
               details=[{"eps": eps_below, "max_D": float(below.deviation_w2.max()),
                         "D_T": float(below.deviation_w2[-1])}], figure=figure,
               parameters=params),
    ]


if __name__ == "__main__":
    for r in main():
        print(r)
