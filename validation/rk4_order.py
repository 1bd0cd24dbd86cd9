"""Claim: the particle RK4 integrator (with retraction) has global order 4; tokens stay on the
sphere to 1e-12.

Random non-symmetric Q, K, V (d = 3, SA, beta = 1), N = 64 tokens, T = 2; reference:
DOP853 with rtol = 1e-13. Errors max_i |x_i(T) - x_i^ref(T)| for dt = 0.2 ... 0.025; the slope of
log(error) against log(dt) is fitted and must be 4 within 0.3 (issue 2). Runtime: seconds.
"""

from __future__ import annotations

import numpy as np

from continuum.geometry import uniform_points
from continuum.model import random_model
from particles import simulate
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "rk4_order"


def main(out_dir=None, quick=False, n=64, T=2.0, dts=(0.2, 0.1, 0.05, 0.025)) -> Record:
    model = random_model(3)
    x0 = uniform_points(n, 3, np.random.default_rng(1))
    with Timer() as timer:
        ref = simulate(model, x0, T, times=[T], method="dop853", rtol=1e-13, atol=1e-15)
        errors, radius = [], []
        for dt in dts:
            traj = simulate(model, x0, T, times=[T], dt=dt)
            errors.append(float(np.abs(traj.points[-1] - ref.points[-1]).max()))
            radius.append(float(np.abs(np.linalg.norm(traj.points[-1], axis=1) - 1).max()))
    slope = float(np.polyfit(np.log(dts), np.log(errors), 1)[0])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(dts, errors, "o-", label=f"RK4, fitted slope {slope:.2f}")
    ax.loglog(dts, errors[-1] * (np.array(dts) / dts[-1]) ** 4, "k--", label="dt^4")
    ax.set_xlabel("dt")
    ax.set_ylabel("max |x(T) - x_ref(T)|")
    ax.legend()
    figure = save(fig, out_dir, NAME)
    rows = [{"dt": dt, "error": e, "max_radius_error": r} for dt, e, r in zip(dts, errors, radius)]
    return Record(case=NAME, claim="RK4 observed order (fitted slope)", measured=slope,
                  expected=4.0, tolerance=0.3, error_kind="abs", details=rows, figure=figure,
                  runtime_s=timer.seconds,
                  parameters={"n": n, "T": T, "dts": list(dts), "d": 3, "beta": 1.0,
                              "reference": "DOP853 rtol=1e-13"})


if __name__ == "__main__":
    print(main())
