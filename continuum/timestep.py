"""Time stepping shared by the particle integrator and the continuum solvers: the step scales,
the progress bar and the one marching loop of the explicit solvers (:func:`march`)."""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["field_scale", "default_dt", "march", "progress_bar"]


def field_scale(model) -> float:
    """L_est = ||V||_2 (1 + 2 beta ||Q^T K||_2): the size of the field's Jacobian, used for the
    default step and the stability check (a proxy, not a proven Lipschitz bound)."""
    return float(np.linalg.norm(model.V, 2) * (1 + 2 * model.beta * np.linalg.norm(model.A, 2)))


def default_dt(model) -> float:
    """Default RK4 step: min(0.05, 0.1 / L_est), so that (dt L_est)^4 / 120 < 1e-6."""
    return min(0.05, 0.1 / max(field_scale(model), 1e-300))


def progress_bar(progress, T: float, label: str):
    """A tqdm bar over simulated time [0, T] on stderr. ``progress``: True shows it, False
    hides it, None (the solvers' default) shows it only when stderr is a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=float(T), disable=None if progress is None else not progress,
                desc=label, unit="time", file=sys.stderr, leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| t = {n:.4g} / {total:.4g} "
                           "[{elapsed}<{remaining}]")


def march(state, times, T: float, propose, step, save, progress=None, label: str = "march"):
    """The one time-marching loop of the explicit solvers (FV on S^1, DG on S^2).

    Starting from ``state`` at t = 0, repeat: at a saved time ``times[k]`` call
    ``save(k, state)``; otherwise take one step of size
    dt = min(dt_max, times[k] - t), so steps land exactly on the saved times, where
    ``dt_max, context = propose(state)`` is the scheme's stability limit (CFL) and
    ``new, ok = step(state, dt, context)`` the scheme's step. A step that reports ``ok = False``
    (e.g. a stage violated the positivity bound because the speed grew within the step) is
    redone with half the step; a step limit or a halved step below 1e-14 T raises instead of
    looping for ever.

    Returns (final state, {"steps": ..., "step_halvings": ...}).
    """
    t, k, steps, halvings = 0.0, 0, 0, 0
    floor = 1e-14 * max(1.0, T)
    with progress_bar(progress, T, label) as bar:
        while k < len(times):
            if t >= times[k] - floor:
                save(k, state)
                k += 1
                continue
            dt_max, context = propose(state)
            if not (np.isfinite(dt_max) and dt_max > floor):  # would never reach times[k]
                raise RuntimeError(f"{label}: the scheme's step limit is {dt_max:.3g} at t = "
                                   f"{t:.6g} (not a positive number above {floor:.1e})")
            dt = min(dt_max, times[k] - t)
            while True:
                new, ok = step(state, dt, context)
                if ok:
                    break
                dt *= 0.5
                halvings += 1
                if dt < floor:
                    raise RuntimeError(f"{label}: the step was halved below {floor:.1e} at t = "
                                       f"{t:.6g} and still fails its stability check")
            state, t = new, t + dt
            steps += 1
            bar.update(min(dt, T - bar.n))
    return state, {"steps": steps, "step_halvings": halvings}
