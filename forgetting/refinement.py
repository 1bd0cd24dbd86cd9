"""Resolution by refinement in studies (``[backend] resolution = "auto"``): the levels a
continuum backend is run at, when two levels agree, and the error estimate of the finer one.

Levels: the solver's default resolution, then doubled (S^1: n x 2 nodes or cells; S^2 spectral:
band limit L x 2) or refined once more (fem: icosphere level + 1), up to ``max_resolution``
(default :data:`DEFAULT_MAX_RESOLUTION`). Each level is an ordinary run at a fixed resolution
(checkpointed like any other, so a study resumes level by level).

Convergence of a point (one backend, one sweep value) between its last two levels q_{k-1},
q_k: max_t |D_k(t) - D_{k-1}(t)| < tol and |T_dev,k - T_dev,k-1| < tol (two infinite T_dev
agree). The error estimate of the accepted (finest) level is the geometric tail of the
differences, |q_k - q_{k-1}| rho / (1 - rho), where rho = 2^-p is the factor by which the
differences shrink per level:

- from three levels, the observed rho = max_t |Delta_k D(t)| / |Delta_{k-1} D(t)| over the
  saved times whose earlier change is above round-off: Richardson's correction with the
  smallest order p = log2(1 / rho) observed at any saved time (the ratios scatter between
  times and levels, 0.19 to 0.31 on the smooth FV case of the tests, so the slowest one
  keeps the estimate an upper bound there; for a spectral method, whose differences shrink
  geometrically, the same formula is the exact tail); differences that do not shrink
  (rho >= 1) are no asymptotic regime: the level is not accepted, refinement goes on;
- from two levels, the design order p = 1 (rho = 1/2, the estimate is the last difference):
  first order is what a clustered run converges at (a collapsed cluster is pinned to its
  cell; the FV and DG pinning analysis of docs/design.md), below the schemes' smooth-data
  orders (FV and DG 2, spectral exponential), so the estimate is the conservative one;
- differences at round-off (below :data:`ROUND_OFF`) are their own estimate.

The same rho serves T_dev, a functional of D (delta T_dev ~ delta D / D'(T_dev)).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["refinement_levels", "refine", "settle_levels", "DEFAULT_MAX_RESOLUTION",
           "ROUND_OFF", "DESIGN_RATIO"]

#: the largest resolution "auto" tries when ``[backend] max_resolution`` is not given
DEFAULT_MAX_RESOLUTION = {("fv", 2): 4096, ("spectral", 2): 4096, ("spectral", 3): 128,
                          ("fem", 3): 5}
#: changes of D (radians) and T_dev below this are round-off: no order is fitted to them
ROUND_OFF = 1e-12
#: the factor by which differences shrink per level at the design order p = 1 (two levels)
DESIGN_RATIO = 0.5


def refine(method: str, resolution: int) -> int:
    """The next level: icosphere level + 1 (fem), else twice the nodes, cells or band limit."""
    return resolution + 1 if method == "fem" else 2 * resolution


def refinement_levels(method: str, d: int, max_resolution=None) -> tuple:
    """The resolutions of ``method`` in dimension ``d`` that "auto" may use: the solver's
    default, refined (:func:`refine`) while <= ``max_resolution`` (default
    :data:`DEFAULT_MAX_RESOLUTION`). ValueError / TypeError naming ``max_resolution`` unless it
    is a valid resolution leaving at least two levels."""
    from continuum.solve import check_method

    start = check_method(method, d, None)
    top = DEFAULT_MAX_RESOLUTION[(method, d)] if max_resolution is None else max_resolution
    try:
        top = check_method(method, d, top)
    except (TypeError, ValueError) as err:
        raise type(err)(f"max_resolution: {err}") from None
    levels = [start]
    while refine(method, levels[-1]) <= top:
        levels.append(refine(method, levels[-1]))
    if len(levels) < 2:
        raise ValueError(f"max_resolution = {top} leaves no level above the start resolution "
                         f"{start} of '{method}' (resolution = 'auto' compares two levels at "
                         f"least: max_resolution >= {refine(method, start)})")
    return tuple(levels)


def _change(a: float, b: float) -> float:
    if math.isinf(a) and math.isinf(b):
        return 0.0  # neither level reaches delta within the run
    return abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf


def settle_levels(D: list, t_dev: list, tol: float) -> dict:
    """Whether successive levels of one point agree, and the error estimate of the finest.

    ``D``: the deviations D(t) (arrays over the saved times) at the levels computed so far,
    coarsest first; ``t_dev``: their T_dev. Returns {"converged", "error_w2" (array over the
    times), "error_t_dev", "ratio" (rho used), "change" (max_t |Delta D|), "change_t_dev",
    "unsettled_from" (index of the first saved time whose D changed by >= tol, or None)}."""
    if len(D) < 2:
        raise ValueError("settle_levels needs two levels at least")
    step = np.abs(np.asarray(D[-1]) - np.asarray(D[-2]))
    change, change_t = float(step.max()), _change(t_dev[-1], t_dev[-2])
    ratio, shrinking = DESIGN_RATIO, True  # two levels, or a change at round-off: rho = 1/2
    if change > ROUND_OFF and len(D) >= 3:
        before = np.abs(np.asarray(D[-2]) - np.asarray(D[-3]))
        seen = before > ROUND_OFF
        observed = float(np.max(step[seen] / before[seen])) if seen.any() else math.inf
        shrinking = observed < 1.0
        ratio = observed if shrinking else math.nan
    factor = ratio / (1.0 - ratio) if shrinking else math.inf
    error = step * factor if shrinking else np.full(step.shape, math.inf)
    error_t = change_t * factor if shrinking else math.inf
    converged = change < tol and change_t < tol and shrinking
    late = np.nonzero(step >= tol)[0]
    return {"converged": bool(converged), "error_w2": error, "error_t_dev": float(error_t),
            "ratio": float(ratio), "change": change, "change_t_dev": change_t,
            "unsettled_from": int(late[0]) if late.size else None}
