"""Resolution by refinement in studies (``[backend] resolution = "auto"``): the levels a
continuum backend is run at, when two levels agree, and the error estimate of the finer one.

Levels: the solver's default resolution, then doubled (S^1: n x 2 nodes or cells; S^2 spectral:
band limit L x 2) or refined once more (fem: icosphere level + 1), up to ``max_resolution``
(default :data:`DEFAULT_MAX_RESOLUTION`). Each level is an ordinary run at a fixed resolution
(checkpointed like any other, so a study resumes level by level).

Convergence of a point (one backend, one sweep value) between its last two levels q_{k-1},
q_k: max_t |D_k(t) - D_{k-1}(t)| < tol and |T_dev,k - T_dev,k-1| < tol (two infinite T_dev
agree), with differences that shrink. The error estimate of the accepted (finest) level is
the geometric tail of the differences, ``continuum.refine.tail_estimate`` (the rule of
``solve(resolution="auto")`` too): |q_k - q_{k-1}| rho / (1 - rho) with rho the slowest
shrinking factor observed over the saved times (no smaller than 1/4 for fv and fem, the design
order 2), 1/2 from two levels (first order, the order of a clustered run pinned to its cells:
the conservative choice); rho >= 1 (differences not shrinking) is not converged. The same rho
serves T_dev, a functional of D (delta T_dev ~ delta D / D'(T_dev)).
"""

from __future__ import annotations

import math

import numpy as np

from continuum.refine import ROUND_OFF, ladder, tail_estimate

__all__ = ["refinement_levels", "settle_levels", "DEFAULT_MAX_RESOLUTION"]

#: the largest resolution "auto" tries when ``[backend] max_resolution`` is not given (a
#: study runs many points: one doubling less than ``continuum.refine.MAX_RESOLUTION``)
DEFAULT_MAX_RESOLUTION = {("fv", 2): 4096, ("spectral", 2): 4096, ("spectral", 3): 128,
                          ("fem", 3): 5}


def refinement_levels(method: str, d: int, max_resolution=None) -> tuple:
    """The resolutions of ``method`` in dimension ``d`` that "auto" may use: the solver's
    default, refined (``continuum.refine.ladder``: x 2, fem level + 1) while <= ``max_resolution`` (default
    :data:`DEFAULT_MAX_RESOLUTION`). ValueError / TypeError naming ``max_resolution`` unless it
    is a valid resolution leaving at least two levels."""
    from continuum.solve import check_method

    start = check_method(method, d, None)
    top = DEFAULT_MAX_RESOLUTION[(method, d)] if max_resolution is None else max_resolution
    try:
        top = check_method(method, d, top)
    except (TypeError, ValueError) as err:
        raise type(err)(f"max_resolution: {err}") from None
    levels = ladder(method, d, start, top)
    if len(levels) < 2:
        raise ValueError(f"max_resolution = {top} leaves no level above the start resolution "
                         f"{start} of '{method}' (resolution = 'auto' compares two levels at "
                         f"least: max_resolution >= {start + 1 if method == 'fem' else 2 * start})")
    return tuple(levels)


def _change(a: float, b: float) -> float:
    if math.isinf(a) and math.isinf(b):
        return 0.0  # neither level reaches delta within the run
    return abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf


def settle_levels(D: list, t_dev: list, tol: float, method: str) -> dict:
    """Whether successive levels of one point agree, and the error estimate of the finest.

    ``D``: the deviations D(t) (arrays over the saved times) at the levels computed so far,
    coarsest first; ``t_dev``: their T_dev; ``method``: the backend (its design order bounds
    rho, ``continuum.refine.tail_estimate``). Returns {"converged", "error_w2" (array over
    the times), "error_t_dev", "ratio" (rho used), "change" (max_t |Delta D|),
    "change_t_dev", "unsettled_from" (index of the first saved time whose D changed by
    >= tol, or None)}."""
    if len(D) < 2:
        raise ValueError("settle_levels needs two levels at least")
    steps = np.abs(np.diff(np.stack([np.asarray(x, dtype=float) for x in D]), axis=0))
    error, ratio, _ = tail_estimate(steps, method)
    step = steps[-1]
    change, change_t = float(step.max()), _change(t_dev[-1], t_dev[-2])
    shrinking = ratio < 1.0
    factor = ratio / (1.0 - ratio) if shrinking else math.inf
    error_t = change_t if change_t <= ROUND_OFF else change_t * factor
    converged = change < tol and change_t < tol and shrinking
    late = np.nonzero(step >= tol)[0]
    return {"converged": bool(converged), "error_w2": error, "error_t_dev": float(error_t),
            "ratio": float(ratio), "change": change, "change_t_dev": change_t,
            "unsettled_from": int(late[0]) if late.size else None}
