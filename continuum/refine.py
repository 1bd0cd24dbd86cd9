"""Error bars by refinement: ``solve(..., resolution="auto", tol=..., max_resolution=...)``.

The run is repeated on a ladder of resolutions r_0 < r_1 < ... (r_0 the method's default, or
``start``): S^1 nodes or cells x 2, the S^2 band limit x 2, the icosphere level + 1 (h / 2),
until the distance between the saved measures of two consecutive resolutions is below ``tol``
at every saved time and the finer run is resolved (no under-resolution flag). The distance:

- S^1: W_1 (arc length, exact: ``continuum.wasserstein.wasserstein_circle``) between the two
  densities on the finer grid, the coarser one carried there without loss (spectral: its
  trigonometric interpolant at the finer nodes; fv: each cell average on the cell's two
  halves). Comparing the nodal measures on their own grids would measure the quadrature (an
  O(h) displacement of the atoms) instead of the solution;
- S^2: the H^{-2} distance of ``continuum.sobolev``. Spectral: the coarse density
  synthesised on the finer Gauss-Legendre grid, whose nodes integrate every harmonic of degree
  <= L + 1 against a density of degree L exactly, so the distance to degree L + 1 is that of
  the two densities (the nodal measures on their own grids differ by their quadrature, an
  O(L^-2) H^{-2} term that would hide the spectral convergence). fem: the two cell measures
  (masses at the centroids) to degree 64: the centroid rule represents a density to O(h^2) in
  H^{-2}, the scheme's own order. W_1 by POT would need an M x M cost matrix (M = 5120 cells at
  level 4, 8580 nodes at L = 64: 0.4 to 1.2 GB, cubic time), while H^{-2} costs O(M + L^2) and
  metrizes weak convergence on S^2 (s > 1).

The result is the finest Solution, with in ``info``:

- ``resolutions``: the ladder run; ``differences`` (levels - 1, nt): the distances between
  consecutive levels at each saved time;
- ``error_estimate`` (nt,) and ``observed_order``: :func:`tail_estimate` of the differences,
  the one rule the studies use too (``forgetting.refinement``).
- ``ladder_wall_time_s`` (every level) beside the finest run's own ``wall_time_s``.

The estimate is of the spatial error: the time integrator's own error (the spectral solvers'
DOP853 rtol, 1e-10 by default, relative) is a floor that differences between resolutions do
not see, so keep ``tol`` well above it (or lower rtol with the options).

Coarse levels may be under-resolved (they run with ``on_unresolved="warn"``, silently: they are
the ladder, not the answer; a level that cannot hold the initial density is skipped); the
finest must be resolved. Not converged within
``max_resolution``, or a level beyond memory or its step budget, is ``UnderResolved`` naming
the finest resolution run and the last difference (``on_unresolved="warn"``: a warning and the
finest Solution, flagged).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace

import numpy as np

from .checks import check_real
from .resolution import UnderResolved, UnderResolvedWarning
from .timestep import StepCollapseError

__all__ = ["solve_auto", "check_auto", "ladder", "level_distance", "tail_estimate", "DEFAULT_TOL",
           "MAX_RESOLUTION", "ROUND_OFF", "DESIGN_ORDER", "SOBOLEV_S", "SOBOLEV_L"]

#: default tolerance on the distance between consecutive resolutions (radians on S^1)
DEFAULT_TOL = 1e-3
#: default finest resolution tried, per (method, d)
MAX_RESOLUTION = {("spectral", 2): 4096, ("fv", 2): 8192, ("spectral", 3): 256, ("fem", 3): 6}
#: differences at or below this are round-off: no ratio is fitted to them
ROUND_OFF = 1e-12
#: design order of the grid methods (None: exponential)
DESIGN_ORDER = {"fv": 2.0, "fem": 2.0, "spectral": None}
#: the S^2 distance: H^{-s}, s and the truncation degree
SOBOLEV_S, SOBOLEV_L = 2.0, 64


def ladder(method: str, d: int, start: int, max_resolution: int) -> list:
    """The resolutions tried: start, then doubled (fem: level + 1) while <= max_resolution."""
    out = [start]
    while True:
        nxt = out[-1] + 1 if method == "fem" else 2 * out[-1]
        if nxt > max_resolution:
            return out
        out.append(nxt)


def split_cells(coarse, fine, i: int) -> np.ndarray:
    """fv: the coarse cell averages at saved time i on the fine cells (cell j of n/2 covers
    fine cells 2j and 2j + 1)."""
    return np.repeat(coarse.density(i), 2)


def level_distance(coarse, fine, i: int, carry=None) -> float:
    """Distance (module docstring) between saved time i of two consecutive levels.
    ``carry(coarse, fine, i)``: the coarse density at the fine nodes (S^1 spectral: its
    trigonometric interpolant; fv: :func:`split_cells`; S^2 spectral: its synthesis on the
    fine Gauss-Legendre grid), or None (fem: the two cell measures are compared as they are,
    H^{-2} to degree SOBOLEV_L)."""
    from .measure import Measure
    from .sobolev import sobolev_distance

    if carry is None:
        return sobolev_distance(coarse.measure(i), fine.measure(i), SOBOLEV_S, SOBOLEV_L)
    masses = np.maximum(carry(coarse, fine, i), 0.0) * fine.quadrature
    carried = Measure(fine.points, masses / masses.sum())
    if fine.points.shape[1] == 3:  # the fine grid integrates degree <= L + 1 exactly
        return sobolev_distance(carried, fine.measure(i), SOBOLEV_S, fine.info["resolution"] + 1)
    from .wasserstein import wasserstein_circle
    return wasserstein_circle(carried, fine.measure(i))


def tail_estimate(differences, method: str):
    """(estimate, rho, observed order or None): the error of the finest level of a ladder
    from the differences q_k - q_{k-1} between consecutive levels (rows, coarsest first;
    columns: the saved times, or any quantity compared level by level).

    If the differences shrink by a factor rho per level (e_k = rho e_{k-1}, rho = 2^-p for a
    method of order p), the finest error is the tail of the geometric series,
    e_k = |q_k - q_{k-1}| rho / (1 - rho) (Richardson's correction). The observed rho, from two
    rows or more, is the largest ratio last / previous over the columns whose previous
    difference is above :data:`ROUND_OFF`: the slowest convergence seen anywhere, so the
    estimate errs on the safe side; rho >= 1 (differences not shrinking) is no asymptotic
    regime, and the estimate is inf. The rho used:

    - fv and fem: the observed one, no smaller than 2^-2 (a pre-asymptotic ratio beyond the
      design order 2 must not shrink the estimate below what the scheme delivers); 1/2 from
      one row (first order, so the estimate is the last difference: the order at which a
      clustered run converges, a collapsed cluster pinned to its cell, below the smooth-data
      order 2: the conservative choice);
    - spectral: 1/2, the estimate is the last difference itself. Convergence is exponential,
      so the fine error is far below the coarse one and the last difference bounds it; an
      observed ratio would extrapolate below the time integrator's own error (DOP853's rtol),
      a floor that differences between resolutions do not see.

    Columns whose last difference is at round-off (<= ROUND_OFF) are their own estimate.
    Returns (estimate per column, rho used, observed order log2(1 / rho_observed) or None)."""
    d = np.abs(np.atleast_2d(np.asarray(differences, dtype=float)))
    last = d[-1]
    rho, observed = 0.5, None
    if len(d) >= 2:
        seen = d[-2] > ROUND_OFF
        seen_rho = float(np.max(last[seen] / d[-2][seen])) if seen.any() else 0.0
        observed = math.log2(1.0 / seen_rho) if 0 < seen_rho < 1 else \
            (math.inf if seen_rho == 0 else None)
        if seen_rho >= 1:
            rho = seen_rho
        elif DESIGN_ORDER[method] is not None and seen.any():
            rho = max(seen_rho, 2.0 ** -DESIGN_ORDER[method])
    factor = rho / (1.0 - rho) if rho < 1 else math.inf
    estimate = np.where(last <= ROUND_OFF, last, last * factor)
    return estimate, rho, observed


def check_auto(method, d, tol, max_resolution, start, check_method):
    """(tol, start, max_resolution) checked before any run, the resolutions by
    ``check_method`` (``continuum.solve.check_method``): tol > 0, start and max_resolution
    valid resolutions of the method with at least one refinement between them."""
    tol = DEFAULT_TOL if tol is None else check_real(tol, "tol", low=0, low_open=True)
    start = check_method(method, d, start)
    if max_resolution is None:
        max_resolution = max(MAX_RESOLUTION[(method, d)], start)
    try:
        max_resolution = check_method(method, d, max_resolution)
    except (TypeError, ValueError) as err:
        raise type(err)(str(err).replace("resolution", "max_resolution", 1)) from None
    if len(ladder(method, d, start, max_resolution)) < 2:
        raise ValueError(f"max_resolution must allow one refinement of the starting resolution "
                         f"{start} (resolution='auto' needs two levels), got {max_resolution}")
    return tol, start, max_resolution


def solve_auto(run, method: str, d: int, tol: float, start: int, max_resolution: int,
               on_unresolved: str = "raise", carry=None):
    """Refine until converged to ``tol`` (module docstring), ``run(resolution)`` returning the
    Solution at one resolution (with ``on_unresolved="warn"``); the arguments checked by
    :func:`check_auto`, ``carry`` as in :func:`level_distance`. Returns the finest Solution
    with the error estimate in ``info``."""
    runs, differences, wall = [], [], time.perf_counter()
    failure, skipped = "", None
    for resolution in ladder(method, d, start, max_resolution):
        try:
            sol = run(resolution)
        except UnderResolved as err:  # an initial density this level cannot hold: refine
            if err.solution is not None:
                raise
            skipped = err
            continue
        except (MemoryError, StepCollapseError) as err:
            if not runs:
                raise
            failure = f"; resolution {resolution} failed: {type(err).__name__}: {err}"
            break
        if runs:
            differences.append([level_distance(runs[-1], sol, i, carry) for i in range(len(sol))])
        runs.append(sol)
        if differences and max(differences[-1]) < tol and "under_resolved_from" not in sol.info \
                and np.all(np.isfinite(tail_estimate(differences, method)[0])):
            break  # converged: close, resolved, and the differences shrink
    if not runs:
        raise skipped
    finest = runs[-1]
    info = dict(finest.info)
    info.update(resolutions=[r.info["resolution"] for r in runs], tol=tol,
                ladder_wall_time_s=time.perf_counter() - wall)
    last = math.inf
    if differences:
        diffs = np.array(differences)
        estimate, _, observed = tail_estimate(diffs, method)
        info.update(differences=diffs, error_estimate=estimate, observed_order=observed)
        # differences that do not shrink are no asymptotic regime: not converged
        last = float(diffs[-1].max()) if np.all(np.isfinite(estimate)) else math.inf
    result = replace(finest, info=info)
    resolved = "under_resolved_from" not in info
    if last < tol and resolved:
        return result
    pair = info["resolutions"][-2:]
    compared = (f"the difference between resolutions {pair} is {diffs[-1].max():.3g}"
                + ("" if math.isfinite(last) else " and the differences do not shrink")
                if differences else f"only resolution {pair[0]} ran, nothing to compare it with")
    why = (f"not converged to tol = {tol:g}: {compared}" + ("" if resolved else f", and the finest is under-resolved from "
                            f"t = {info['under_resolved_from']:g} ({info['under_resolved']})")
           + failure)
    remedy = (f"raise max_resolution (now {max_resolution}), loosen tol, shorten T, or use "
              "another method")
    message = (f"{method} solver with resolution='auto' stopped at resolution "
               f"{info['resolution']}: {why}; {remedy}")
    if on_unresolved == "raise":
        raise UnderResolved(message, method=method, resolution=info["resolution"],
                            time=info.get("under_resolved_from", math.nan), reason=why,
                            remedy=remedy, solution=result)
    info.setdefault("under_resolved_from", float(finest.times[0]))
    info.setdefault("under_resolved", why)
    warnings.warn(message, UnderResolvedWarning, stacklevel=3)
    return result
