"""Claim: particle runs reproduce the growth rates of the uniform state (docs/design.md, section 1).

Q = K = V = I, SA and USA, beta in {1, 4}. On S^1 (N-point lattice) modes k = 1..3 grow at
k^2 I_k(beta)/beta (USA) and k^2 I_k(beta)/(beta I_0(beta)) (SA); on S^2 (weighted Gauss grid)
degrees l = 1, 2 grow at l(l+1) i_l(beta)/beta and l(l+1) i_l(beta)/(beta i_0(beta)).
Method: particles.growth (displacement eigenmodes, amplitude 1e-7, RK4, T = 1).
Tolerance: 1e-4 relative (issue 2). Expected runtime: about 30 s.
"""

from __future__ import annotations

from continuum import Attention
from continuum.linear import uniform_growth_rate
from particles.growth import growth_rate_circle, growth_rate_sphere
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "growth_rates_particles"
TOLERANCE = 1e-4


def main(out_dir=None, quick=False, betas=(1.0, 4.0), modes_circle=(1, 2, 3),
         degrees_sphere=(1, 2)) -> Record:
    rows = []
    with Timer() as timer:
        for normalized in (True, False):
            for beta in betas:
                for d, modes, measure in ((2, modes_circle, growth_rate_circle),
                                          (3, degrees_sphere, growth_rate_sphere)):
                    model = Attention(beta=beta, d=d, normalized=normalized)
                    for k in modes:
                        measured = measure(model, k)
                        expected = uniform_growth_rate(k, beta, d, normalized)
                        rows.append({"model": model.name, "d": d, "beta": beta, "mode": k,
                                     "measured": measured, "expected": expected,
                                     "rel_error": abs(measured / expected - 1)})
    worst = max(rows, key=lambda r: r["rel_error"])
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    for col, (d, title) in enumerate(((2, "S^1, mode k"), (3, "S^2, degree l"))):
        for name, marker in (("SA", "o"), ("USA", "s")):
            for beta in betas:
                sel = [r for r in rows if r["d"] == d and r["model"] == name and r["beta"] == beta]
                ks = [r["mode"] for r in sel]
                label = f"{name}, beta={beta:g}"
                axes[0, col].plot(ks, [r["expected"] for r in sel], "-", color="0.7")
                axes[0, col].plot(ks, [r["measured"] for r in sel], marker, label=label)
                axes[1, col].semilogy(ks, [r["rel_error"] for r in sel], marker + "-", label=label)
        axes[0, col].set_yscale("log")
        axes[0, col].set_ylabel("growth rate")
        axes[0, col].set_title(f"{title}: particles (markers), formula (lines)", fontsize=10)
        axes[0, col].legend(fontsize=8)
        axes[1, col].axhline(TOLERANCE, color="r", ls="--", label="tolerance")
        axes[1, col].set_xlabel("mode" if d == 2 else "degree")
        axes[1, col].set_ylabel("relative error")
        axes[1, col].set_xticks(sorted({r["mode"] for r in rows if r["d"] == d}))
    fig.tight_layout()
    figure = save(fig, out_dir, NAME)
    return Record(case=NAME, claim="uniform-state growth rates from particles (worst case)",
                  measured=worst["measured"], expected=worst["expected"],
                  tolerance=TOLERANCE, error_kind="rel", details=rows, figure=figure,
                  runtime_s=timer.seconds,
                  parameters={"betas": list(betas), "modes_circle": list(modes_circle),
                              "degrees_sphere": list(degrees_sphere), "n_circle": 1024,
                              "n_lat_sphere": 24, "amplitude": 1e-7, "T": 1.0})


if __name__ == "__main__":
    print(main())
