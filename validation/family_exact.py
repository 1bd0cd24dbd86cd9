"""Claims (issue 24, the model family): several heads and layers keep the exact answers.

1. Several zonal heads (Q_h^T K_h = V_h = I, different beta_h, SA and USA): the growth rate of
   the uniform state is the sum of the heads' rates, sum_h lambda_l(beta_h)
   (``continuum.linear.heads_growth_rate``), measured as the single-head cases measure it: the
   spectral S^1 solver (validation/circle_growth_rates.py, 1e-6), the spectral S^2 solver
   (validation/sphere_spectral_growth_rates.py, 1e-8) and lattice particles on S^1
   (validation/growth_rates.py, 1e-4). It would be refuted by a rate off by more than those
   tolerances (a head dropped, double-counted, or run through a wrong path: the heads' rates
   differ by factors of 2 to 10, so any such slip is far outside).
2. Dirac data across layer switches (4 layers of random Q, V, beta in {0.5, 2, 1, 3}, SA,
   tau = 0.37): the tokens stay one point and move as prod_k e^{tau V_k} x0 / |.|. RK4's error
   against it falls with order 4 (fitted over dt = 0.04, 0.02, 0.01, +- 0.3): a step across a
   switch would leave an O(dt) error (order 1); DOP853 (rtol 1e-12) restarted at each switch
   stays within 1e-9.
3. Identical layers equal the time-independent model: particles (RK4) with the switches among
   the saved times, bit for bit (difference 0).

Runtime: about 15 s (quick: 5 s).
"""

from __future__ import annotations

import numpy as np

from continuum import Attention, Layers, MultiHead
from continuum.family import model_at
from continuum.linear import heads_growth_rate
from continuum.model import random_model
from particles import simulate
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "family_exact"


def zonal_heads(d):
    """Three zonal heads: SA beta 1, SA beta 4, USA beta 2."""
    return MultiHead([Attention(beta=1.0, d=d), Attention(beta=4.0, d=d),
                      Attention(beta=2.0, d=d, normalized=False)])


def growth_rows(modes):
    from particles.growth import growth_rate_circle
    from validation import circle_growth_rates, sphere_spectral_growth_rates, growth_rates

    rows = []
    methods = (("S1 spectral", 2, circle_growth_rates.TOLERANCE,
                lambda m, k, rate: circle_growth_rates.measured_rate(
                    m, k, T=min(1.0 / rate, 2.0), rtol=1e-12, atol=1e-14)),
               ("S2 spectral", 3, sphere_spectral_growth_rates.TOLERANCE,
                lambda m, k, rate: sphere_spectral_growth_rates.measured_rate(
                    m, k, T=min(1.0 / rate, 2.0))),
               ("S1 particles", 2, growth_rates.TOLERANCE,
                lambda m, k, rate: growth_rate_circle(m, k, n=256)))
    for method, d, tolerance, measure in methods:
        model = zonal_heads(d)
        for k in modes:
            expected = heads_growth_rate(k, model)
            measured = measure(model, k, expected)
            rows.append({"method": method, "mode": k, "measured": measured,
                         "expected": expected, "tolerance": tolerance,
                         "heads": [heads_growth_rate(k, MultiHead([h])) for h in model.heads],
                         "rel_error": abs(measured / expected - 1)})
    return rows


def dirac_layers():
    rng = np.random.default_rng(11)
    models = [Attention(beta=b, d=3, Q=0.5 * rng.standard_normal((3, 3)),
                        V=rng.standard_normal((3, 3))) for b in (0.5, 2.0, 1.0, 3.0)]
    return Layers(models, layer_time=0.37)


def dirac_exact(depth, x0, t):
    """prod_k e^{tau_k V_k} x0 / |.| over the layers in force on [0, t]."""
    from scipy.linalg import expm

    x, s = np.array(x0, dtype=float), 0.0
    while s < t:
        m, nxt = model_at(depth, s)
        end = min(nxt, t)
        x = expm((end - s) * m.V) @ x
        x /= np.linalg.norm(x)
        s = end
    return x


def main(out_dir=None, quick=False):
    with Timer() as timer:
        rows = growth_rows((1, 2) if quick else (1, 2, 3))
        depth = dirac_layers()
        x0 = np.random.default_rng(12).standard_normal((1, 3))
        x0 /= np.linalg.norm(x0)
        T = 1.5
        steps = [0.04, 0.02, 0.01]
        errors = [float(np.abs(simulate(depth, x0, T, times=[0.0, T], dt=dt).points[1, 0]
                               - dirac_exact(depth, x0[0], T)).max()) for dt in steps]
        order = float(np.polyfit(np.log(steps), np.log(errors), 1)[0])
        times = np.linspace(0.0, T, 31)
        dop = simulate(depth, np.tile(x0, (3, 1)), T, times=times, method="dop853",
                       rtol=1e-12, atol=1e-14)
        path = np.array([dirac_exact(depth, x0[0], t) for t in times])
        dop_error = float(np.abs(dop.points - path[:, None, :]).max())
        model = random_model(3, beta=2.0, seed=3)
        cloud = np.random.default_rng(1).standard_normal((40, 3))
        cloud /= np.linalg.norm(cloud, axis=1, keepdims=True)
        saved = [0.0, 0.25, 0.5, 0.75, 1.0]
        same = simulate(model, cloud, 1.0, times=saved, dt=0.05).points
        layered = simulate(Layers([model] * 4, 0.25), cloud, 1.0, times=saved, dt=0.05).points
        identical = float(np.abs(same - layered).max())
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for method, marker in (("S1 spectral", "o"), ("S2 spectral", "s"), ("S1 particles", "^")):
        sel = [r for r in rows if r["method"] == method]
        axes[0].semilogy([r["mode"] for r in sel], [r["rel_error"] for r in sel], marker + "-",
                         label=f"{method} (tol {sel[0]['tolerance']:g})")
    axes[0].set_xlabel("mode k / degree l")
    axes[0].set_ylabel("|measured / sum of the heads' rates - 1|")
    axes[0].set_title("3 zonal heads: growth rates add", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].loglog(steps, errors, "o-", label=f"RK4, fitted order {order:.2f}")
    axes[1].loglog(steps, errors[-1] * (np.array(steps) / steps[-1]) ** 4, "k--",
                   label="dt^4")
    axes[1].set_xlabel("dt")
    axes[1].set_ylabel("error at T = 1.5")
    axes[1].set_title("Dirac across 3 layer switches (tau = 0.37)", fontsize=10)
    axes[1].legend(fontsize=8)
    for j in range(3):
        axes[2].plot(times, path[:, j], "-", color=f"C{j}", label=f"x_{j + 1} exact")
        axes[2].plot(times, dop.points[:, 0, j], "o", color=f"C{j}", ms=3)
    for k in range(1, len(depth)):
        axes[2].axvline(depth.switch(k), color="0.7", ls=":")
    axes[2].set_xlabel("t")
    axes[2].set_title(f"prod e^(tau V_k) x0 / |.| (lines), DOP853 (dots): "
                      f"max error {dop_error:.1e}", fontsize=9)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    figure = save(fig, out_dir, NAME)
    records = []
    for method in ("S1 spectral", "S2 spectral", "S1 particles"):
        sel = [r for r in rows if r["method"] == method]
        worst = max(sel, key=lambda r: r["rel_error"])
        records.append(Record(
            case=f"{NAME}_heads_growth_{method.replace(' ', '_').lower()}",
            claim=f"growth rates of 3 zonal heads add ({method}, worst mode)",
            measured=worst["measured"], expected=worst["expected"],
            tolerance=worst["tolerance"], error_kind="rel", details=sel, figure=figure,
            runtime_s=timer.seconds, parameters={"heads": "SA beta 1, SA beta 4, USA beta 2"}))
    records += [
        Record(case=f"{NAME}_dirac_rk4_order", claim="RK4 keeps order 4 across layer switches "
               "(Dirac exact solution)", measured=order, expected=4.0, tolerance=0.3,
               error_kind="abs", details=[{"dt": s, "error": e} for s, e in zip(steps, errors)],
               figure=figure, runtime_s=timer.seconds, parameters={"layer_time": 0.37, "T": T}),
        Record(case=f"{NAME}_dirac_dop853", claim="DOP853 restarted at each switch follows "
               "prod e^(tau V_k) x0 / |.|", measured=dop_error, expected=0.0, tolerance=1e-9,
               error_kind="abs", figure=figure, runtime_s=timer.seconds,
               parameters={"rtol": 1e-12, "atol": 1e-14}),
        Record(case=f"{NAME}_identical_layers", claim="4 identical layers = the time-"
               "independent model (RK4, switches among the saved times), bit for bit",
               measured=identical, expected=0.0, tolerance=0.0, error_kind="abs",
               figure=figure, runtime_s=timer.seconds)]
    return records


if __name__ == "__main__":
    for record in main():
        print(record)
