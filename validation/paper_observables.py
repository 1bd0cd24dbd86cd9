"""Claim (issue 5): the paper's observables on S^2. Base V = I, fine-tuned
V = diag(1, 1 - eps, 1 - eps) (SA, beta = 4, N = 64 uniform tokens, delta = 0.1 rad): the
fine-tuned tokens first gather on the base model's clusters ("time cluster", nearly independent
of eps) and later leave them, drifting to +-e1 at rate ~ eps ("time bifurcation", which should
scale like 1/eps: the slope of log t_bif against log eps is -1 within 0.15).

eps in {0.0005, 0.001, 0.002}: all 64 tokens are within delta of the cluster only by t ~ 50,
while the cluster drifts up to eps/2 rad per unit time, so eps must stay well below
2 delta / 50 = 0.004 (at eps = 0.008 the fine-tuned tokens never gather on the base cluster).
Both observables are computed with an accurate integrator (DOP853, rtol 1e-9) and with the
paper's scheme (Euler plus renormalisation, one layer per step, dt = 0.1), side by side, so a
reader sees what the integrator changes (reported, not asserted: relative differences).
Saved every layer (0.1) up to T = 0.6 / eps. Runtime: about a minute.
"""

from __future__ import annotations

import numpy as np

from continuum import Attention
from forgetting.observables import cluster_times, reference_clusters
from particles import sample, simulate
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "paper_observables"


def observables(eps, x0, beta, delta, method):
    base = Attention(beta=beta, d=3)
    tuned = Attention(beta=beta, d=3, V=np.diag([1.0, 1.0 - eps, 1.0 - eps]))
    T = round(0.6 / eps, 1)  # measured: eps * time bifurcation ~ 0.22-0.25, so 2x margin
    times = np.round(np.arange(0.0, T + 1e-9, 0.1), 10)  # every layer
    opts = ({"method": "dop853", "rtol": 1e-9, "atol": 1e-11} if method == "accurate"
            else {"method": "layers", "dt": 0.1})
    ref = simulate(base, x0, T, times=[T], **opts)
    centres = reference_clusters(ref.points[-1], delta)
    traj = simulate(tuned, x0, T, times=times, **opts)
    t_cluster, t_bif = cluster_times(traj.times, traj.points, centres, delta)
    return {"eps": eps, "method": method, "clusters": len(centres), "time_cluster": t_cluster,
            "time_bifurcation": t_bif}


def main(out_dir=None, quick=False, epsilons=(0.0005, 0.001, 0.002), beta=4.0, delta=0.1,
         n=64, seed=0):
    if quick:
        epsilons = (0.001, 0.002)
    x0 = sample("uniform", n=n, d=3, seed=seed)
    rows = []
    with Timer() as timer:
        for method in ("accurate", "euler_dt0.1"):
            for eps in epsilons:
                rows.append(observables(eps, x0, beta, delta, method))
    acc = [r for r in rows if r["method"] == "accurate"]
    slope = float(np.polyfit(np.log([r["eps"] for r in acc]),
                             np.log([r["time_bifurcation"] for r in acc]), 1)[0])
    for r in rows:
        if r["method"] != "accurate":
            a = next(x for x in acc if x["eps"] == r["eps"])
            r["rel_change_time_cluster"] = r["time_cluster"] / a["time_cluster"] - 1
            r["rel_change_time_bifurcation"] = r["time_bifurcation"] / a["time_bifurcation"] - 1
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for method, style in (("accurate", "-"), ("euler_dt0.1", "--")):
        sel = [r for r in rows if r["method"] == method]
        e = [r["eps"] for r in sel]
        ax.loglog(e, [r["time_cluster"] for r in sel], "o" + style, label=f"time cluster, {method}")
        ax.loglog(e, [r["time_bifurcation"] for r in sel], "s" + style,
                  label=f"time bifurcation, {method}")
    e = np.array(epsilons)
    ax.loglog(e, acc[0]["time_bifurcation"] * e[0] / e, "k:", label="1/eps")
    ax.set_xlabel("eps (V = diag(1, 1 - eps, 1 - eps))")
    ax.set_ylabel("time")
    ax.legend(fontsize=7)
    figure = save(fig, out_dir, NAME)
    return Record(case=NAME, claim="time bifurcation ~ eps^p (accurate integrator): fitted p",
                  measured=slope, expected=-1.0, tolerance=0.15, error_kind="abs",
                  details=rows, figure=figure, runtime_s=timer.seconds,
                  parameters={"beta": beta, "delta": delta, "n": n, "seed": seed,
                              "epsilons": list(epsilons)})


if __name__ == "__main__":
    r = main()
    print(r.measured, r.passed)
    for row in r.details:
        print(row)
