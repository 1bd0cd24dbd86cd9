"""Claims (issue 5): on random instances the measured deviation never exceeds the Gronwall
bound W_1(mu_t, nu_t) <= eps (e^{Lt} - 1)/L (forgetting.bounds), and for small eps the
deviation is linear in eps: D(t)/eps does not depend on eps (to about 1%, docs/design.md).

Random Q, K, V (entries N(0, 1/d)), d = 3, SA and USA, beta in {0, 1, 2}; random rank-r LoRA
update of V (r = 1, 2), spectral norms eps in {1e-3, 2e-3, 4e-3} for linear response and
{1e-2, 1e-1} for the bound; N = 200 tokens, RK4 with the default step, T = 4, 9 saved times.
W_1 is measured with the geodesic cost, which dominates the chordal cost of the bound, so the
check is, if anything, stricter than the theorem. Runtime: about a minute.
"""

from __future__ import annotations

import numpy as np

from continuum import lora_update
from continuum.model import random_model
from forgetting.runs import forgetting_run
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "forgetting_bounds"


def main(out_dir=None, quick=False, betas=(0.0, 1.0, 2.0), n=200, T=4.0):
    if quick:
        betas, n = (1.0,), 100
    times = np.linspace(0.0, T, 9)
    bound_rows, response_rows, collapse = [], [], {}
    with Timer() as timer:
        for normalized in (True, False):
            for beta in betas:
                for seed, rank in ((1, 1), (2, 2)):
                    model = random_model(3, beta, normalized, seed)
                    for eps in (1e-2, 1e-1):
                        tuned = model.perturbed(V=lora_update(3, rank=rank, norm=eps,
                                                              seed=seed + 10))
                        run = forgetting_run(model, tuned, n=n, T=T, times=times, seed=seed)
                        ratio = run.deviation_w1[1:] / run.gronwall[1:]
                        bound_rows.append({"model": model.name, "beta": beta, "rank": rank,
                                           "eps": eps, "max_W1_over_bound": float(ratio.max())})
                    curves = []
                    for eps in (1e-3, 2e-3, 4e-3):
                        tuned = model.perturbed(V=lora_update(3, rank=rank, norm=eps,
                                                              seed=seed + 10))
                        run = forgetting_run(model, tuned, n=n, T=T, times=times, seed=seed)
                        curves.append(run.deviation_w2[1:] / eps)
                    spread = float(np.max(np.abs(np.array(curves) / curves[0] - 1)))
                    response_rows.append({"model": model.name, "beta": beta, "rank": rank,
                                          "max_rel_spread": spread})
                    collapse[f"{model.name} b={beta:g} r={rank}"] = curves
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, curves in collapse.items():
        for c, style in zip(curves, ("-", "--", ":")):
            axes[0].plot(times[1:], c, style, label=label if style == "-" else None)
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("D(t) / eps  (eps = 1e-3 solid, 2e-3 dashed, 4e-3 dotted)")
    axes[0].legend(fontsize=6)
    axes[1].semilogy([r["max_W1_over_bound"] for r in bound_rows], "o")
    axes[1].axhline(1.0, color="r", ls="--", label="Gronwall bound")
    axes[1].set_xlabel("instance")
    axes[1].set_ylabel("max_t W_1 / bound")
    axes[1].legend()
    fig.tight_layout()
    figure = save(fig, out_dir, NAME)
    worst_bound = max(r["max_W1_over_bound"] for r in bound_rows)
    worst_spread = max(r["max_rel_spread"] for r in response_rows)
    params = {"betas": list(betas), "n": n, "T": T}
    return [
        Record(case=f"{NAME}_gronwall", claim="measured W_1 / Gronwall bound (max over random "
               "instances and times; must be <= 1)", measured=worst_bound, expected=1.0,
               tolerance=0.0, error_kind="at_most", details=bound_rows, figure=figure,
               runtime_s=timer.seconds, parameters=params),
        Record(case=f"{NAME}_linear_response", claim="D(t)/eps collapse for eps = 1e-3..4e-3 "
               "(max relative spread)", measured=worst_spread, expected=0.0, tolerance=0.01,
               error_kind="value", details=response_rows, figure=figure, parameters=params),
    ]


if __name__ == "__main__":
    for r in main():
        print(r)
