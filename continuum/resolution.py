"""Under-resolution: what a continuum solver does when it knows its answer is not resolved.

Every solver checks an indicator at every saved time (t = 0 included):

- finite volumes on S^1 and DG on S^2: :func:`cluster_unresolved`, a cluster narrower than a
  cell (one cell holds more than ``cluster_fraction`` of the mass of itself and its
  neighbours);
- spectral on S^1 and S^2: :func:`spectral_indicator`, the spectral tail above ``tail_tol`` or
  a nodal density below -tail_tol max rho (:func:`negative_density`).

The first saved time at which it fires goes to ``info["under_resolved_from"]``, why to
``info["under_resolved"]``, what to do (for the geometry at hand) to
``info["under_resolved_remedy"]``, and :func:`settle_resolution` decides, by
``on_unresolved`` (every solver's keyword and :func:`continuum.solve`'s):

- ``"raise"`` (the default): the solver stops at that saved time (it does not integrate to T
  for nothing) and :class:`UnderResolved` names the method, the resolution, the time and the
  remedy, holding the partial Solution; no number of an unresolved run reaches the caller
  unflagged;
- ``"warn"``: the run goes on to T, one :class:`UnderResolvedWarning`, and the Solution whose
  ``info`` keeps the time and the reason (for studies, which flag such points in their table
  and figures).

An initial density the grid cannot hold is :class:`UnderResolved` at time 0
(:func:`initial_unresolved`) in both modes (``continuum.initial.check_total_mass``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .checks import check_choice

__all__ = ["UnderResolved", "UnderResolvedWarning", "ON_UNRESOLVED", "check_on_unresolved",
           "settle_resolution", "initial_unresolved", "cluster_unresolved", "negative_density",
           "spectral_indicator", "GRID_REMEDY"]

#: what to do about an under-resolved finite-volume (S^1) or DG (S^2) run
GRID_REMEDY = "use a finer grid (resolution > {resolution}) or resolution='auto'"
#: what :func:`continuum.solve` does with a run its solver knows to be under-resolved
ON_UNRESOLVED = ("raise", "warn")


class UnderResolved(RuntimeError):
    """A continuum run that its solver knows to be under-resolved.

    Attributes: ``method``, ``resolution``, ``time`` (the first saved time at which the
    solution was no longer resolved; 0 for an initial density the grid cannot hold), ``reason``
    and ``remedy`` (strings), ``solution`` (the partial Solution, or None)."""

    def __init__(self, message: str, *, method=None, resolution=None, time=math.nan,
                 reason: str = "", remedy: str = "", solution=None):
        super().__init__(message)
        self.method, self.resolution, self.time = method, resolution, time
        self.reason, self.remedy, self.solution = reason, remedy, solution


class UnderResolvedWarning(UserWarning):
    """``on_unresolved="warn"``: the run is under-resolved from ``info['under_resolved_from']``."""


def check_on_unresolved(value) -> str:
    """``on_unresolved``: "raise" or "warn" (else an error naming it)."""
    check_choice(value, "on_unresolved", ON_UNRESOLVED)
    return value


def initial_unresolved(method, resolution, reason: str, remedy: str) -> UnderResolved:
    """The :class:`UnderResolved` error (time 0, no Solution) of an initial density that the
    grid of ``method`` at ``resolution`` cannot hold, saying ``reason`` and ``remedy``."""
    return UnderResolved(f"{method} solver at resolution {resolution} cannot hold the initial "
                         f"density (t = 0): {reason}; {remedy}", method=method,
                         resolution=resolution, time=0.0, reason=reason, remedy=remedy)


def settle_resolution(solution, on_unresolved: str):
    """Raise :class:`UnderResolved` (``"raise"``) or warn (``"warn"``) if the solver recorded
    ``info["under_resolved_from"]``; return the Solution otherwise (or when warned)."""
    info = solution.info
    if "under_resolved_from" not in info:
        return solution
    t = float(info["under_resolved_from"])
    method, resolution = info.get("method"), info.get("resolution")
    reason = info.get("under_resolved", "the solver's resolution indicator fired")
    remedy = info.get("under_resolved_remedy", "increase resolution")
    message = (f"{method} solver at resolution {resolution} is under-resolved from "
               f"t = {t:g}: {reason}; {remedy} (or pass on_unresolved='warn' to keep the "
               "partial run, flagged in info['under_resolved_from'])")
    if on_unresolved == "raise":
        raise UnderResolved(message, method=method, resolution=resolution, time=t,
                            reason=reason, remedy=remedy, solution=solution)
    warnings.warn(message, UnderResolvedWarning, stacklevel=3)
    return solution


def negative_density(rho: np.ndarray, tail_tol: float) -> str:
    """Why nodal values ``rho`` are not a resolved density ("" if they are): a minimum below
    -tail_tol max rho: beyond the errors of a resolved density, which carries relative errors of
    the size of its spectral tail (below tail_tol), round-off (1e-16) and the time error
    (DOP853's rtol, 1e-10 by default); what is left is the Gibbs undershoot of a density the
    grid no longer resolves."""
    low, high = float(rho.min()), float(np.abs(rho).max())
    if low < -tail_tol * high:
        return (f"the density is negative at the nodes (min {low:.3g} < -tail_tol x max rho = "
                f"{-tail_tol * high:.3g}: the Gibbs undershoot of an unresolved density)")
    return ""


def spectral_indicator(rho: np.ndarray, tail: float, tail_tol: float) -> str:
    """Why a spectral state is under-resolved ("" if it is resolved): its spectral ``tail``
    above ``tail_tol`` or its nodal values ``rho`` negative beyond :func:`negative_density`'s
    bound. Shared by the S^1 and S^2 spectral solvers."""
    if tail > tail_tol:
        return (f"spectral tail {tail:.2g} > tail_tol = {tail_tol:g} (relative errors of "
                "that size)")
    return negative_density(rho, tail_tol)


def cluster_unresolved(masses: np.ndarray, neighbours: np.ndarray, fraction: float) -> str:
    """Why cell masses are under-resolved ("" if not): a cell holding at least 1e-3 of the
    total mass and more than ``fraction`` of the mass of itself and its ``neighbours``
    (indices (cells, k)): a cluster narrower than a cell. The indicator of the FV solver on
    S^1 (two neighbours) and of the DG solver on S^2 (the three edge neighbours)."""
    neighbourhood = masses + masses[neighbours].sum(axis=1)
    hit = (masses >= 1e-3 * masses.sum()) & (masses > fraction * neighbourhood)
    if not hit.any():
        return ""
    j = int(np.argmax(np.where(hit, masses, -np.inf)))
    return (f"a cluster is narrower than a cell: cell {j} holds {masses[j] / neighbourhood[j]:.3g}"
            f" > cluster_fraction = {fraction:g} of the mass of itself and its neighbours "
            f"({masses[j] / masses.sum():.3g} of the total)")
