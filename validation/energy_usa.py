"""Claim: for USA with Q = K = V = I the interaction energy
E(mu) = (1/(2 beta)) int int (e^{beta <x,y>} - 1) dmu dmu obeys dE/dt = int |X[mu]|^2 dmu >= 0.

N = 400 random tokens on S^2, beta = 1, DOP853 (rtol 1e-12). Checks: (i) E never decreases
between saved times; (ii) the identity: E(t_k) - E(0) against the trapezoid integral of
int |X|^2 dmu over the saved times. With 201 saved times on [0, 4], the trapezoid rule's error is
(h^2/12) int |D''| = O(1e-5) relative (D = int|X|^2 is smooth); tolerance 1e-4 relative.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import cumulative_trapezoid

from continuum import Attention
from continuum.geometry import uniform_points
from particles import simulate
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "energy_usa"


def main(out_dir=None, quick=False, n=400, beta=1.0, T=4.0, d=3) -> Record:
    if quick:
        n = 150
    model = Attention(beta=beta, d=d, normalized=False)
    x0 = uniform_points(n, d, np.random.default_rng(3))
    times = np.linspace(0.0, T, 201)
    with Timer() as timer:
        traj = simulate(model, x0, T, times=times, method="dop853", rtol=1e-12, atol=1e-14)
        energy = np.array([traj.measure(i).interaction_energy(model) for i in range(len(times))])
        dissipation = np.array([
            traj.weights @ np.sum(traj.measure(i).field(model) ** 2, axis=1)
            for i in range(len(times))])
    gain = energy - energy[0]
    predicted = cumulative_trapezoid(dissipation, times, initial=0.0)
    identity_error = float(np.max(np.abs(gain - predicted)) / gain[-1])
    min_increment = float(np.min(np.diff(energy)))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(times, energy, "-")
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("E(mu_t)")
    axes[1].plot(times, gain, "-", label="E(t) - E(0)")
    axes[1].plot(times, predicted, "--", label="int_0^t int |X|^2 dmu ds")
    axes[1].set_xlabel("t")
    axes[1].legend()
    figure = save(fig, out_dir, NAME)
    details = [{"min_energy_increment": min_increment, "monotone": bool(min_increment >= 0),
                "identity_rel_error": identity_error}]
    measured = identity_error if min_increment >= 0 else float("inf")
    return Record(case=NAME, claim="USA energy identity dE/dt = int|X|^2 (and monotone)",
                  measured=measured, expected=0.0, tolerance=1e-4, error_kind="value",
                  details=details, figure=figure, runtime_s=timer.seconds,
                  parameters={"n": n, "beta": beta, "T": T, "d": d})


if __name__ == "__main__":
    print(main())
